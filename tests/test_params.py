"""Handler parameters: path, query, JSON body, request, and 422 for bad input (FastAPI's shape)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from pydantic.fields import FieldInfo

from qakeapi import Cookie, Header, Path, QakeAPI, Query
from qakeapi._params import plan_callable
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


def _marker_app() -> QakeAPI:
    app = QakeAPI()

    @app.get("/search")
    async def search(
        ids: list[int] | None = None,
        page: Annotated[int, Query(ge=1, le=100)] = 1,
        tag: str = Query("all", alias="tag-name", max_length=5),
        ratio: float = 1.0,
        user_agent: str | None = Header(None),
        x_token: list[str] = Header([]),
        raw_header: str | None = Header(None, convert_underscores=False),
        session: str | None = Cookie(None),
    ) -> dict[str, Any]:
        return {"ids": ids, "page": page, "tag": tag, "ratio": ratio, "ua": user_agent,
                "tokens": x_token, "raw": raw_header, "session": session}

    @app.get("/need")
    async def need(ids: list[int] = Query(), key: str = Header(alias="X-Key")) -> dict[str, Any]:
        return {"ids": ids, "key": key}

    @app.get("/items/{item_id}")
    async def item(item_id: Annotated[int, Path(gt=0)], code: uuid.UUID | None = None
                   ) -> dict[str, Any]:
        return {"item_id": item_id, "code": str(code) if code else None}

    return app


@pytest.fixture
def markers() -> Any:
    with TestClient(_marker_app()) as c:
        yield c


def test_query_lists_aliases_headers_and_cookies(markers: TestClient) -> None:
    response = markers.get(
        "/search?ids=1&ids=2&page=3&tag-name=new&ratio=0.5",
        headers=[("user-agent", "probe"), ("x-token", "a"), ("x-token", "b"),
                 ("raw_header", "kept"), ("cookie", "session=s1")])
    assert response.json() == {"ids": [1, 2], "page": 3, "tag": "new", "ratio": 0.5,
                               "ua": "probe", "tokens": ["a", "b"], "raw": "kept",
                               "session": "s1"}
    assert markers.get("/search", headers={"user-agent": ""}).json() == {
        "ids": None, "page": 1, "tag": "all", "ratio": 1.0, "ua": "", "tokens": [],
        "raw": None, "session": None}
    assert markers.get("/need?ids=4", headers={"x-key": "k"}).json() == {"ids": [4], "key": "k"}


@pytest.mark.parametrize(("path", "errors"), [
    ("/search?ids=1&ids=x", [(["query", "ids", 1], "int_parsing", "x")]),
    ("/search?page=0", [(["query", "page"], "greater_than_equal", "0")]),
    ("/search?page=101&tag-name=toolong", [(["query", "page"], "less_than_equal", "101"),
                                           (["query", "tag-name"], "string_too_long",
                                            "toolong")]),
    ("/search?ratio=nan", [(["query", "ratio"], "finite_number", "nan")]),
    ("/search?ratio=inf", [(["query", "ratio"], "finite_number", "inf")]),
    ("/search?ratio=1e999", [(["query", "ratio"], "finite_number", "1e999")]),
    ("/search?page=" + "9" * 5000, [(["query", "page"], "int_parsing_size", "9" * 5000)]),
    ("/need", [(["query", "ids"], "missing", None), (["header", "x-key"], "missing", None)]),
    ("/items/0", [(["path", "item_id"], "greater_than", "0")]),
    ("/items/1?code=nope", [(["query", "code"], "uuid_parsing", "nope")]),
])
def test_each_invalid_parameter_is_a_422_at_its_location(
        markers: TestClient, path: str, errors: list[tuple[list[Any], str, Any]]) -> None:
    response = markers.get(path)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [(e["loc"], e["type"], e["input"]) for e in detail] == errors
    assert all(isinstance(e["msg"], str) and e["msg"] for e in detail)


def test_bool_words_and_uuid_scalars(markers: TestClient, client: TestClient) -> None:
    for word, value in [("on", True), ("Yes", True), ("1", True), ("off", False),
                        ("no", False), ("0", False)]:
        assert client.get(f"/users/1?verbose={word}").json()["verbose"] is value
    some = uuid.uuid4()
    assert markers.get(f"/items/2?code={some}").json() == {"item_id": 2, "code": str(some)}


def test_marker_in_annotated_and_as_default_are_the_same_spec() -> None:
    async def handler(a: Annotated[int, Query(gt=0, alias="A")] = 1,
                      b: int = Query(1, gt=0, alias="B"),
                      user_agent: str = Header("x")) -> None:
        return None

    plan = plan_callable(handler, path_params=())
    a, b, ua = plan.params
    assert (a.source, a.alias, a.required, a.default) == ("query", "A", False, 1)
    assert (b.source, b.alias, b.required, b.default) == ("query", "B", False, 1)
    assert (ua.source, ua.alias) == ("header", "user-agent")
    assert isinstance(a.field_info, FieldInfo) and isinstance(b.field_info, FieldInfo)
    assert plan.http_params() == [a, b, ua] and plan.body_params() == []


@pytest.mark.parametrize("annotation", ["Opaque", "list[Opaque]", "Opaque | None",
                                        "dict[str, Opaque]"])
def test_unsupported_annotations_are_refused_naming_handler_and_parameter(
        annotation: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"class Opaque: ...\nasync def handler(value: {annotation}) -> None: ...", namespace)
    with pytest.raises(TypeError, match=r"'handler'.*can't fill parameter 'value'"):
        plan_callable(namespace["handler"], path_params=())


def test_mutable_defaults_are_copied_per_request() -> None:
    app = QakeAPI()

    @app.get("/tags")
    async def tags(tag: list[str] = Query([]), items: list[int] = Query(default_factory=list)
                   ) -> list[Any]:
        tag.append("seen")
        items.append(1)
        return [tag, items]

    with TestClient(app) as client:
        assert client.get("/tags").json() == [["seen"], [1]]
        assert client.get("/tags").json() == [["seen"], [1]]


@pytest.mark.anyio
async def test_resolve_raises_request_validation_error_with_the_errors() -> None:
    from qakeapi import RequestValidationError
    from qakeapi.dependencies import Container

    async def handler(n: int, ids: list[int] = Query([])) -> None:
        return None

    plan = plan_callable(handler, path_params=())
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [],
             "query_string": b"n=x&ids=1&ids=y"}
    with pytest.raises(RequestValidationError) as caught:
        await plan.resolve(Request(scope), Container())
    assert caught.value.status_code == 422 and caught.value.detail == caught.value.errors
    assert [(e["loc"], e["type"]) for e in caught.value.errors] == [
        (["query", "n"], "int_parsing"), (["query", "ids", 1], "int_parsing")]
    scope["query_string"] = b"n=3&ids=1&ids=2"
    assert await plan.resolve(Request(scope), Container()) == {"n": 3, "ids": [1, 2]}
