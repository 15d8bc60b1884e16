"""Handler parameters: path, query, JSON body, request, and 422 for bad input (FastAPI's shape)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from qakeapi import QakeAPI
from qakeapi.requests import Request
from qakeapi.testing import TestClient


@dataclass
class Order:
    id: int
    items: list[str]


def make_app() -> QakeAPI:
    app = QakeAPI()

    @app.get("/users/{user_id}")
    async def user(user_id: int, verbose: bool = False, tag: str | None = None) -> dict[str, Any]:
        return {"user_id": user_id, "verbose": verbose, "tag": tag}

    @app.post("/notify/{user_id}")
    async def notify(user_id: int, message: str) -> dict[str, Any]:
        return {"user_id": user_id, "message": message}

    @app.post("/orders")
    async def orders(order_data: dict[str, Any]) -> dict[str, Any]:
        return {"got": order_data}

    @app.post("/typed")
    async def typed(order: Order) -> dict[str, Any]:
        return {"id": order.id, "items": order.items}

    @app.get("/things/{thing_id}")
    async def thing(thing_id: uuid.UUID, request: Request) -> dict[str, Any]:
        return {"id": str(thing_id), "path": request.url.path}

    @app.post("/raw")
    async def raw(request: Request) -> Any:
        return await request.json()

    return app


@pytest.fixture
def client() -> Any:
    with TestClient(make_app()) as c:
        yield c


def test_path_and_query_conversion(client: TestClient) -> None:
    assert client.get("/users/7?verbose=yes&tag=x").json() == {
        "user_id": 7, "verbose": True, "tag": "x"}
    assert client.get("/users/7").json() == {"user_id": 7, "verbose": False, "tag": None}


def test_missing_query_param_is_422_naming_it(client: TestClient) -> None:
    response = client.post("/notify/1")
    assert response.status_code == 422
    assert response.json()["detail"] == [{"type": "missing", "loc": ["query", "message"],
                                          "msg": "Field required", "input": None}]
    assert client.post("/notify/1?message=hi").json() == {"user_id": 1, "message": "hi"}


@pytest.mark.parametrize(("path", "loc"), [
    ("/users/abc", ["path", "user_id"]),
    ("/users/1?verbose=maybe", ["query", "verbose"]),
    ("/things/not-a-uuid", ["path", "thing_id"]),
])
def test_unconvertible_values_are_422(client: TestClient, path: str, loc: list[str]) -> None:
    response = client.get(path)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


def test_json_body_and_dataclass(client: TestClient) -> None:
    assert client.post("/orders", json={"id": 3}).json() == {"got": {"id": 3}}
    assert client.post("/typed", json={"id": 1, "items": ["a"]}).json() == {
        "id": 1, "items": ["a"]}
    # As in FastAPI, a dataclass body ignores unknown keys and validates its fields.
    extra = client.post("/typed", json={"id": 1, "items": [], "extra": 1})
    assert extra.json() == {"id": 1, "items": []}
    wrong = client.post("/typed", json={"id": "lots", "items": []})
    assert wrong.status_code == 422
    assert [(e["loc"], e["type"]) for e in wrong.json()["detail"]] == [
        (["body", "id"], "int_parsing")]
    missing = client.post("/typed", json={"id": 1})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "items"]


def test_malformed_json_body_parameter_is_422_json_invalid(client: TestClient) -> None:
    response = client.post("/orders", content=b'{"id": ',
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"] == [{
        "type": "json_invalid", "loc": ["body", 7], "msg": "JSON decode error", "input": {},
        "ctx": {"error": "Expecting value"}}]


def test_malformed_json_read_by_the_handler_is_400(client: TestClient) -> None:
    response = client.post("/raw", content=b'{"id": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "malformed JSON body" in response.json()["detail"]


def test_body_of_wrong_shape_is_422(client: TestClient) -> None:
    response = client.post("/orders", json=[1, 2])
    assert response.status_code == 422
    # A single body parameter is the whole body, so the error is located at "body".
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"], error["input"]) == ("dict_type", ["body"], [1, 2])


def test_missing_body_is_422(client: TestClient) -> None:
    response = client.post("/orders")
    assert response.status_code == 422
    assert response.json()["detail"] == [{"type": "missing", "loc": ["body"],
                                          "msg": "Field required", "input": None}]


def test_request_param_by_annotation(client: TestClient) -> None:
    some = uuid.uuid4()
    assert client.get(f"/things/{some}").json() == {"id": str(some), "path": f"/things/{some}"}


def test_unfillable_parameter_type_is_refused_at_registration() -> None:
    app = QakeAPI()

    class Opaque:
        pass

    with pytest.raises(TypeError, match="can't fill parameter 'thing'"):
        @app.get("/x")
        async def handler(thing: Opaque) -> None:
            return None
