"""A ``response: Response`` parameter: headers, cookies and status code set by the handler
(or a dependency) are merged into the response it returns."""

from __future__ import annotations

from typing import Any

from qakeapi import Depends, QakeAPI
from qakeapi._params import plan_callable
from qakeapi.responses import JSONResponse, PlainTextResponse, Response
from qakeapi.testing import TestClient


def tag(response: Response) -> str:
    response.headers["x-from-dependency"] = "yes"
    return "tagged"


def make_app() -> QakeAPI:
    app = QakeAPI()

    @app.post("/created")
    async def created(response: Response) -> dict[str, Any]:
        response.status_code = 201
        response.headers["x-id"] = "7"
        response.set_cookie("session", "abc", httponly=True)
        return {"id": 7}

    @app.get("/plain")
    def plain(response: Response, t: str = Depends(tag)) -> PlainTextResponse:
        response.headers["x-handler"] = "1"
        return PlainTextResponse(t)

    @app.get("/untouched")
    async def untouched(response: Response) -> list[int]:
        return [1]

    @app.get("/own-status")
    async def own_status(response: Response) -> JSONResponse:
        response.headers["x-extra"] = "1"
        return JSONResponse({"ok": True}, status_code=202)

    return app


def test_status_headers_and_cookies_are_merged() -> None:
    with TestClient(make_app()) as client:
        response = client.post("/created")
        assert response.status_code == 201 and response.json() == {"id": 7}
        assert response.headers["x-id"] == "7"
        assert "httponly" in response.headers["set-cookie"].lower()
        assert response.cookies["session"] == "abc"
        assert int(response.headers["content-length"]) == len(response.content)

        plain = client.get("/plain")
        assert plain.text == "tagged"
        assert plain.headers["x-handler"] == "1" and plain.headers["x-from-dependency"] == "yes"

        untouched = client.get("/untouched")
        assert untouched.status_code == 200 and untouched.json() == [1]
        assert "x-id" not in untouched.headers and "set-cookie" not in untouched.headers

        own = client.get("/own-status")
        assert own.status_code == 202 and own.headers["x-extra"] == "1"


def test_the_plan_names_the_response_parameter() -> None:
    async def handler(resp: Response, t: str = Depends(tag)) -> None:
        return None

    plan = plan_callable(handler, path_params=())
    assert plan.response_param == "resp"
    assert [(p.name, p.source) for p in plan.params] == [("resp", "response"), ("t", "inject")]
    assert plan.http_params() == []
