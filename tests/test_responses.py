"""qakeapi's JSON responses send exactly what Starlette's JSONResponse sends."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import JSONResponse as StarletteJSONResponse

from qakeapi import QakeAPI
from qakeapi.responses import JSONResponse, send_json
from qakeapi.testing import TestClient

CASES: list[tuple[Any, dict[str, Any]]] = [
    ({"name": "café", "items": [1, 2.5, None, True]}, {}),
    ([], {"status_code": 201}),
    ({"gone": True}, {"status_code": 204}),
    ({"x": 1}, {"headers": {"X-Trace": "abc"}}),
    ("plain", {"media_type": "text/plain"}),
]


async def sent(app: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app({"type": "http"}, receive, send)
    return messages


@pytest.mark.parametrize(("content", "options"), CASES)
def test_same_body_and_headers_as_starlette(content: Any, options: dict[str, Any]) -> None:
    ours, theirs = JSONResponse(content, **options), StarletteJSONResponse(content, **options)
    assert (ours.body, ours.raw_headers) == (theirs.body, theirs.raw_headers)


@pytest.mark.anyio
@pytest.mark.parametrize("content", [{"a": "é", "b": [1, None]}, [1, 2, 3], {}])
async def test_send_json_sends_what_the_response_would(content: Any) -> None:
    async def direct(scope: Any, receive: Any, send: Any) -> None:
        await send_json(send, content)

    assert await sent(direct) == await sent(StarletteJSONResponse(content))


def test_not_json_compliant_values_are_refused() -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        JSONResponse({"x": float("nan")})


def test_handler_results_are_sent_as_json(caplog: pytest.LogCaptureFixture) -> None:
    app = QakeAPI()

    @app.get("/dict")
    async def as_dict() -> dict[str, str]:
        return {"greeting": "héllo"}

    @app.get("/unencodable")
    async def unencodable() -> dict[str, object]:
        return {"value": object()}

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/dict")
        broken = client.get("/unencodable")
    assert response.json() == {"greeting": "héllo"}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.content))
    assert broken.status_code == 500
