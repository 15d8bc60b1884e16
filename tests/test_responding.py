"""Route options that shape responses (qakeapi._responding): status_code=, response_model=,
the response parameter, streaming and file responses, HTTPException headers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from qakeapi import HTTPException, QakeAPI
from qakeapi.params import Depends
from qakeapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from qakeapi.routing import ResponseValidationError
from qakeapi.testing import TestClient


class Item(BaseModel):
    name: str
    price: float


class User:
    """Not a model: response_model reads its attributes."""

    def __init__(self) -> None:
        self.name = "ada"
        self.price = 3.5
        self.password = "secret"


def test_status_code_applies_to_returned_data() -> None:
    app = QakeAPI()

    @app.post("/items", status_code=201)
    async def create() -> dict[str, int]:
        return {"id": 1}

    @app.delete("/items/{item_id}", status_code=204)
    async def delete(item_id: int) -> dict[str, int]:
        return {"deleted": item_id}  # a 204 has no body, whatever is returned

    @app.post("/accepted", status_code=201)
    async def accepted() -> tuple[dict[str, bool], int]:
        return {"later": True}, 202  # a tuple's status wins

    with TestClient(app) as client:
        created = client.post("/items")
        assert (created.status_code, created.json()) == (201, {"id": 1})
        deleted = client.delete("/items/3")
        assert (deleted.status_code, deleted.content) == (204, b"")
        assert "content-type" not in deleted.headers
        assert client.post("/accepted").status_code == 202


def test_response_model_filters_and_validates_the_output() -> None:
    app = QakeAPI()

    @app.get("/item", response_model=Item)
    async def item() -> dict[str, Any]:
        return {"name": "pen", "price": "2.5", "password": "secret"}

    @app.get("/user", response_model=Item)
    async def user() -> User:
        return User()

    @app.get("/items", response_model=list[Item], status_code=200)
    def items() -> list[dict[str, Any]]:
        return [{"name": "a", "price": 1, "extra": 1}, {"name": "b", "price": 2}]

    with TestClient(app) as client:
        assert client.get("/item").json() == {"name": "pen", "price": 2.5}
        assert client.get("/user").json() == {"name": "ada", "price": 3.5}
        assert client.get("/items").json() == [{"name": "a", "price": 1.0},
                                               {"name": "b", "price": 2.0}]


@pytest.mark.parametrize("output", [
    {"name": "pen"},                       # a missing field
    {"name": "pen", "price": "lots"},      # a wrong type
    {"name": "pen", "price": float("nan")},  # not JSON
    ["not", "an", "object"],
])
def test_output_not_matching_response_model_is_a_logged_500(
        output: Any, caplog: pytest.LogCaptureFixture) -> None:
    app = QakeAPI()

    @app.get("/item", response_model=Item)
    async def item() -> Any:
        return output

    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(
            logging.ERROR, "qakeapi.app"):
        response = client.get("/item")
    assert (response.status_code, response.json()) == (500, {"detail": "Internal Server Error"})
    [record] = [r for r in caplog.records if r.name == "qakeapi.app"]
    assert record.exc_info is not None
    if not isinstance(output, dict) or "price" not in output or output["price"] == "lots":
        assert isinstance(record.exc_info[1], ResponseValidationError)
        assert "does not match its response_model 'Item'" in str(record.exc_info[1])


def test_response_validation_error_reaches_the_test_client() -> None:
    app = QakeAPI()

    @app.get("/item", response_model=Item)
    async def item() -> dict[str, str]:
        return {"name": "pen"}

    with TestClient(app) as client, pytest.raises(ResponseValidationError) as raised:
        client.get("/item")
    assert raised.value.errors[0]["loc"] == ("price",)


def test_bad_options_are_refused_when_the_route_is_added() -> None:
    app = QakeAPI()

    async def handler() -> None:
        return None

    with pytest.raises(ValueError, match="status_code must be an HTTP status"):
        app.add_route("/a", handler, status_code=99)
    with pytest.raises(ValueError, match="status_code"):
        app.add_route("/a", handler, status_code="201")  # type: ignore[typeddict-item]
    with pytest.raises(TypeError, match="response_model 5 is not a type"):
        app.add_route("/a", handler, response_model=5)
    with pytest.raises(TypeError, match="tags must be a list"):
        app.add_route("/a", handler, tags="items")
    with pytest.raises(TypeError, match="unexpected keyword"):
        app.add_route("/a", handler, status=201)  # type: ignore[call-arg]
    assert app.routes == []


def test_http_exception_headers_reach_the_client() -> None:
    app = QakeAPI()

    @app.get("/private")
    async def private() -> None:
        raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Bearer"})

    @app.get("/same")
    async def same() -> None:
        raise HTTPException(304, headers={"etag": '"v1"'})

    with TestClient(app) as client:
        refused = client.get("/private")
        assert (refused.status_code, refused.json()) == (401, {"detail": "log in first"})
        assert refused.headers["www-authenticate"] == "Bearer"
        same_response = client.get("/same")
        assert (same_response.status_code, same_response.headers["etag"]) == (304, '"v1"')


def test_streaming_and_file_responses(tmp_path: Path) -> None:
    app = QakeAPI()
    report = tmp_path / "report.csv"
    report.write_text("a,b\n1,2\n")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def lines() -> AsyncIterator[bytes]:
            for i in range(3):
                yield b"line %d\n" % i

        return StreamingResponse(lines(), media_type="text/plain")

    @app.get("/report", status_code=201)
    async def file() -> FileResponse:
        return FileResponse(report, filename="report.csv")

    with TestClient(app) as client:
        assert client.get("/stream").text == "line 0\nline 1\nline 2\n"
        downloaded = client.get("/report")
        assert (downloaded.status_code, downloaded.text) == (200, "a,b\n1,2\n")
        assert 'filename="report.csv"' in downloaded.headers["content-disposition"]


def test_a_returned_model_without_response_model_is_its_json() -> None:
    app = QakeAPI()

    @app.get("/item")
    async def item() -> Item:
        return Item(name="pen", price=1)

    with TestClient(app) as client:
        assert client.get("/item").json() == {"name": "pen", "price": 1.0}


def test_the_response_parameter_is_merged_into_what_the_handler_returns() -> None:
    app = QakeAPI()

    async def audit(response: Response) -> str:
        response.headers["x-audit"] = "seen"  # a dependency shares the handler's object
        return "audited"

    @app.post("/login", status_code=201, response_model=Item)
    async def login(response: Response, audit: str = Depends(audit)) -> dict[str, Any]:
        response.set_cookie("session", "abc", httponly=True)
        return {"name": audit, "price": 1, "token": "never sent"}

    @app.get("/later")
    async def later(response: Response) -> tuple[dict[str, bool], int]:
        response.status_code = 202
        return {"later": True}, 200

    @app.get("/own")
    async def own(response: Response) -> JSONResponse:
        response.headers["x-extra"] = "1"
        return JSONResponse({"own": True}, status_code=203)

    with TestClient(app) as client:
        login_response = client.post("/login")
        assert (login_response.status_code, login_response.json()) == (
            201, {"name": "audited", "price": 1.0})
        assert login_response.headers["x-audit"] == "seen"
        assert login_response.headers.get_list("set-cookie") == [
            "session=abc; HttpOnly; Path=/; SameSite=lax"]
        assert int(login_response.headers["content-length"]) == len(login_response.content)
        assert client.get("/later").status_code == 202
        own_response = client.get("/own")
        assert (own_response.status_code, own_response.headers["x-extra"]) == (203, "1")


def test_yield_dependencies_end_after_the_response_of_a_route_with_options() -> None:
    app = QakeAPI()
    events: list[str] = []

    async def session() -> AsyncIterator[str]:
        events.append("open")
        try:
            yield "db"
        except HTTPException as exc:
            events.append(f"rollback {exc.status_code}")
            raise
        finally:
            events.append("close")

    @app.post("/rows", status_code=201)
    async def add_row(fail: bool = False, db: str = Depends(session)) -> dict[str, str]:
        events.append("handler")
        if fail:
            raise HTTPException(409, "conflict")
        return {"db": db}

    with TestClient(app) as client:
        created = client.post("/rows")
        assert (created.status_code, created.json()) == (201, {"db": "db"})
        assert events == ["open", "handler", "close"]
        events.clear()
        assert client.post("/rows?fail=true").status_code == 409
        assert events == ["open", "handler", "rollback 409", "close"]
