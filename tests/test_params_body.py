"""JSON bodies through Pydantic: models, dataclasses, several/embedded body parameters, and a
422 naming the location for every bad body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel, Field

from qakeapi import Body, QakeAPI
from qakeapi._params import plan_callable
from qakeapi.testing import AsyncTestClient, TestClient


class Item(BaseModel):
    name: str = Field(min_length=1)
    qty: int = Field(gt=0)
    tags: list[str] = []


@dataclass
class Line:
    sku: str
    qty: int


def make_app() -> QakeAPI:
    app = QakeAPI()

    @app.post("/items")
    async def create(item: Item) -> dict[str, Any]:
        assert isinstance(item, Item)
        return item.model_dump()

    @app.post("/lines")
    def line(line: Line) -> dict[str, Any]:
        assert isinstance(line, Line)
        return {"sku": line.sku, "qty": line.qty}

    @app.post("/both")
    async def both(item: Item, line: Line, note: str = Body("none")) -> dict[str, Any]:
        return {"item": item.name, "line": line.qty, "note": note}

    @app.post("/embed")
    async def embed(item: Item = Body(embed=True)) -> dict[str, Any]:
        return {"name": item.name}

    @app.post("/optional")
    async def optional(item: Item | None = None) -> dict[str, Any]:
        return {"item": item.name if item else None}

    @app.post("/scalar")
    async def scalar(count: int = Body(embed=True, ge=0)) -> dict[str, Any]:
        return {"count": count}

    return app


@pytest.fixture
def client() -> Any:
    with TestClient(make_app()) as c:
        yield c


def test_models_and_dataclasses_are_validated_bodies(client: TestClient) -> None:
    assert client.post("/items", json={"name": "pen", "qty": 2}).json() == {
        "name": "pen", "qty": 2, "tags": []}
    assert client.post("/lines", json={"sku": "a", "qty": "3"}).json() == {"sku": "a", "qty": 3}
    assert client.post("/both", json={"item": {"name": "p", "qty": 1},
                                      "line": {"sku": "s", "qty": 4}}).json() == {
        "item": "p", "line": 4, "note": "none"}
    assert client.post("/embed", json={"item": {"name": "p", "qty": 1}}).json() == {"name": "p"}
    assert client.post("/optional").json() == {"item": None}
    assert client.post("/optional", json={"name": "p", "qty": 1}).json() == {"item": "p"}
    assert client.post("/scalar", json={"count": 5}).json() == {"count": 5}


@pytest.mark.parametrize(("path", "body", "errors"), [
    ("/lines", {"sku": "a", "qty": "lots"}, [(["body", "qty"], "int_parsing")]),
    ("/items", {"name": "", "qty": 0}, [(["body", "name"], "string_too_short"),
                                        (["body", "qty"], "greater_than")]),
    ("/items", {"name": "p", "qty": 1, "tags": [1]}, [(["body", "tags", 0], "string_type")]),
    ("/items", [], [(["body"], "model_type")]),
    ("/items", b"null", [(["body"], "model_type")]),
    ("/both", {"item": {"name": "p", "qty": 1}}, [(["body", "line"], "missing")]),
    ("/both", {"item": {"name": "p", "qty": -1}, "line": {"sku": "s", "qty": "x"}},
     [(["body", "item", "qty"], "greater_than"), (["body", "line", "qty"], "int_parsing")]),
    ("/embed", {"name": "p", "qty": 1}, [(["body", "item"], "missing")]),
    ("/scalar", {"count": -1}, [(["body", "count"], "greater_than_equal")]),
    ("/scalar", b'{"count": 1e400}', [(["body", "count"], "finite_number")]),
    # Beyond Python's 4300-digit limit the JSON itself is refused.
    ("/scalar", b'{"count": ' + b"9" * 5000 + b"}", [(["body"], "json_invalid")]),
])
def test_each_invalid_body_is_a_422_at_its_location(
        client: TestClient, path: str, body: Any, errors: list[tuple[list[Any], str]]) -> None:
    if isinstance(body, bytes):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == errors


@pytest.mark.parametrize("path", ["/items", "/both", "/embed"])
def test_a_missing_body_is_a_422(client: TestClient, path: str) -> None:
    response = client.post(path)
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["detail"]]
    assert locs == {"/items": [["body"]], "/both": [["body", "item"], ["body", "line"]],
                    "/embed": [["body", "item"]]}[path]


@pytest.mark.parametrize("raw", [b"{", b'{"name": "p",}', b"nan", b"\xff\xfe"])
def test_malformed_json_is_422_json_invalid(client: TestClient, raw: bytes) -> None:
    response = client.post("/items", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["type"] == "json_invalid" and error["loc"][0] == "body"


def test_a_body_that_is_not_json_is_a_422(client: TestClient) -> None:
    response = client.post("/items", content=b"name=p", headers={"content-type": "text/plain"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]
    assert "Content-Type" in response.json()["detail"][0]["msg"]


def test_body_params_of_the_plan() -> None:
    async def handler(item: Item, count: int = Body(0), q: str = "") -> None:
        return None

    plan = plan_callable(handler, path_params=())
    assert [(p.name, p.source) for p in plan.body_params()] == [("item", "body"),
                                                                ("count", "body")]
    assert [(p.name, p.source) for p in plan.http_params()] == [
        ("item", "body"), ("count", "body"), ("q", "query")]


def test_mixing_json_body_and_form_fields_is_refused_at_registration() -> None:
    from qakeapi import Form

    app = QakeAPI()
    with pytest.raises(TypeError, match="can't be mixed"):
        @app.post("/mixed")
        async def mixed(item: Item, name: str = Form()) -> None:
            return None


@pytest.mark.anyio
async def test_bodies_through_the_async_client() -> None:
    async with AsyncTestClient(make_app()) as client:
        ok = await client.post("/items", json={"name": "p", "qty": 1})
        bad = await client.post("/items", json={"name": "p", "qty": "many"})
    assert ok.json()["qty"] == 1
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "qty"]
