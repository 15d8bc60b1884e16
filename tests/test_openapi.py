"""OpenAPI 3.1 documents (qakeapi.openapi): an app using every parameter kind, models,
nested models, response models, lists, enums, optionals, forms and files gives a document
that ``openapi-spec-validator`` accepts (and a broken one is refused, so that check can fail);
what the document says matches what the app does, including its 422 bodies."""

from __future__ import annotations

import copy
import dataclasses
import enum
import types
from typing import Annotated, Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from pydantic import BaseModel, Field
from referencing.exceptions import Unresolvable
from starlette.responses import PlainTextResponse

from qakeapi import QakeAPI, Router
from qakeapi.dashboard import dashboard
from qakeapi.openapi import build_openapi
from qakeapi.params import Body, Cookie, Depends, File, Form, Header, Path, Query, UploadFile
from qakeapi.testing import TestClient


class Color(str, enum.Enum):
    red = "red"
    green = "green"


class Address(BaseModel):
    street: str
    city: str = Field(description="The city", min_length=1)


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    age: int = Field(ge=0, le=150)
    address: Address | None = None
    favourite: Color = Color.red
    tags: list[str] = []


class UserOut(BaseModel):
    id: int
    name: str


@dataclasses.dataclass
class Line:
    sku: str
    qty: int


def pagination(offset: Annotated[int, Query(ge=0)] = 0,
               limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 10
               ) -> dict[str, int]:
    return {"offset": offset, "limit": limit}


def build_app() -> QakeAPI:
    app = QakeAPI(title="Shop", version="2.0.0", description="A shop.")

    @app.get("/users/{user_id:int}", response_model=UserOut, tags=["users"])
    async def read_user(
        user_id: Annotated[int, Path(ge=1, description="The user's id")],
        page: Annotated[dict[str, int], Depends(pagination)],
        x_token: Annotated[str, Header(description="API token")],
        q: Annotated[str | None, Query(examples=["ada"], title="Search")] = None,
        ids: Annotated[list[int] | None, Query()] = None,
        color: Color | None = None,
        session: Annotated[str | None, Cookie()] = None,
        old: Annotated[str | None, Query(deprecated=True, alias="legacy-name")] = None,
        secret: Annotated[str | None, Query(include_in_schema=False)] = None,
    ) -> dict[str, Any]:
        """Read a user.

        Looks the user up by id.
        """
        return {"id": user_id, "name": "ada", "internal": "dropped by response_model"}

    @app.post("/users", status_code=201, response_model=UserOut, tags=["users"],
              responses={409: {"description": "Name taken"}})
    async def create_user(user: UserIn) -> dict[str, Any]:
        return {"id": 1, "name": user.name}

    @app.get("/users", response_model=list[UserOut], tags=["users"])
    async def list_users() -> list[dict[str, Any]]:
        return [{"id": 1, "name": "ada"}]

    @app.post("/orders")
    async def order(lines: list[Line], note: Annotated[str, Body(max_length=200)],
                    priority: Annotated[int, Body(embed=True)] = 0) -> dict[str, int]:
        return {"lines": len(lines)}

    @app.post("/notes")
    async def note(text: Annotated[str, Body(embed=True)]) -> dict[str, str]:
        return {"text": text}

    @app.post("/login")
    async def login(username: Annotated[str, Form()],
                    password: Annotated[str, Form(min_length=8)],
                    remember: Annotated[bool, Form()] = False) -> dict[str, str]:
        return {"user": username}

    @app.post("/upload")
    async def upload(file: UploadFile, extra: Annotated[list[UploadFile], File()],
                     caption: Annotated[str, Form()] = "") -> dict[str, Any]:
        return {"name": file.filename, "extra": len(extra)}

    @app.delete("/users/{user_id:int}", status_code=204, deprecated=True,
                operation_id="remove_user", summary="Remove a user",
                description="Gone for good.")
    async def delete_user(user_id: int) -> None:
        return None

    @app.get("/hidden", include_in_schema=False)
    async def hidden() -> dict[str, bool]:
        return {"hidden": True}

    @app.route("/both", methods=["GET", "POST"])
    async def both() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.websocket("/ws")
    async def ws(websocket: Any) -> None:
        await websocket.close()

    admin = Router(prefix="/admin", tags=["admin"])

    @admin.get("/stats")
    async def stats() -> dict[str, int]:
        return {"users": 1}

    app.include_router(admin, prefix="/v1")
    app.mount("/tasks", dashboard(app.queued_tasks, auth="a-long-token"))
    return app


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_app().openapi()


def operation(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][path][method]
    return found


def params_by_name(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in op.get("parameters", [])}


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Shop", "version": "2.0.0", "description": "A shop."}
    validate(document)  # openapi-spec-validator picks its 3.1 validator from "openapi"


@pytest.mark.parametrize("breakage", [
    "response without description", "unknown parameter location", "dangling $ref",
    "undeclared path parameter", "bad version"])
def test_a_broken_document_fails_validation(document: dict[str, Any], breakage: str) -> None:
    broken = copy.deepcopy(document)
    read = broken["paths"]["/users/{user_id}"]["get"]
    if breakage == "response without description":
        del read["responses"]["200"]["description"]
    elif breakage == "unknown parameter location":
        read["parameters"][0]["in"] = "body"
    elif breakage == "dangling $ref":
        read["responses"]["200"]["content"]["application/json"]["schema"] = {
            "$ref": "#/components/schemas/Nope"}
    elif breakage == "undeclared path parameter":
        read["parameters"] = [p for p in read["parameters"] if p["in"] != "path"]
    else:
        broken["openapi"] = "3.1"
    with pytest.raises((OpenAPIValidationError, Unresolvable)):
        validate(broken)


def test_paths_methods_and_what_is_left_out(document: dict[str, Any]) -> None:
    assert set(document["paths"]) == {
        "/users/{user_id}", "/users", "/orders", "/notes", "/login", "/upload", "/both",
        "/v1/admin/stats"}
    assert set(document["paths"]["/users/{user_id}"]) == {"get", "delete"}
    assert set(document["paths"]["/both"]) == {"get", "post"}, "no HEAD beside GET"
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert operation(document, "/users/{user_id}", "get")["operationId"] == \
        "read_user_users__user_id_int__get"
    assert operation(document, "/v1/admin/stats", "get")["tags"] == ["admin"]


def test_parameters_of_every_kind(document: dict[str, Any]) -> None:
    params = params_by_name(operation(document, "/users/{user_id}", "get"))
    assert set(params) == {"user_id", "offset", "limit", "x-token", "q", "ids", "color",
                           "session", "legacy-name"}, "include_in_schema=False is left out"
    assert params["user_id"] == {
        "name": "user_id", "in": "path", "required": True, "description": "The user's id",
        "schema": {"type": "integer", "minimum": 1, "description": "The user's id"}}
    assert params["x-token"]["in"] == "header" and params["x-token"]["required"] is True
    assert params["session"]["in"] == "cookie" and params["session"]["required"] is False
    limit = params["limit"]
    assert limit["in"] == "query" and limit["required"] is False
    assert limit["description"] == "Page size", "from a dependency's parameter"
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 100,
                               "description": "Page size", "default": 10}
    assert params["ids"]["schema"] == {"anyOf": [{"type": "array", "items": {"type": "integer"}},
                                                 {"type": "null"}]}
    assert params["q"]["schema"] == {"anyOf": [{"type": "string"}, {"type": "null"}],
                                     "title": "Search", "examples": ["ada"]}
    assert params["color"]["schema"]["anyOf"][0] == {"$ref": "#/components/schemas/Color"}
    assert document["components"]["schemas"]["Color"]["enum"] == ["red", "green"]
    assert params["legacy-name"]["deprecated"] is True


def test_json_bodies(document: dict[str, Any]) -> None:
    create = operation(document, "/users", "post")
    body = create["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UserIn"}
    user_in = document["components"]["schemas"]["UserIn"]
    assert user_in["required"] == ["name", "age"]
    assert user_in["properties"]["name"]["minLength"] == 1
    assert user_in["properties"]["address"]["anyOf"][0] == {
        "$ref": "#/components/schemas/Address"}
    assert document["components"]["schemas"]["Address"]["properties"]["city"][
        "description"] == "The city"
    orders = operation(document, "/orders", "post")["requestBody"]["content"][
        "application/json"]["schema"]
    assert orders["type"] == "object" and orders["required"] == ["lines", "note"]
    assert orders["properties"]["lines"] == {"type": "array",
                                             "items": {"$ref": "#/components/schemas/Line"}}
    assert orders["properties"]["note"] == {"type": "string", "maxLength": 200}
    assert orders["properties"]["priority"] == {"type": "integer", "default": 0}
    embedded = operation(document, "/notes", "post")["requestBody"]["content"][
        "application/json"]["schema"]
    assert embedded == {"type": "object", "properties": {"text": {"type": "string"}},
                        "required": ["text"]}


def test_forms_and_files(document: dict[str, Any]) -> None:
    login = operation(document, "/login", "post")["requestBody"]
    schema = login["content"]["application/x-www-form-urlencoded"]["schema"]
    assert schema["required"] == ["username", "password"]
    assert schema["properties"]["password"] == {"type": "string", "minLength": 8}
    upload = operation(document, "/upload", "post")["requestBody"]
    schema = upload["content"]["multipart/form-data"]["schema"]
    assert schema["properties"]["file"] == {"type": "string", "format": "binary"}
    assert schema["properties"]["extra"] == {
        "type": "array", "items": {"type": "string", "format": "binary"}}
    assert schema["properties"]["caption"] == {"type": "string", "default": ""}
    assert schema["required"] == ["file", "extra"]


def test_responses_texts_and_flags(document: dict[str, Any]) -> None:
    read = operation(document, "/users/{user_id}", "get")
    assert read["summary"] == "Read a user."
    assert read["description"] == "Looks the user up by id."
    assert read["tags"] == ["users"]
    assert read["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UserOut"}
    assert read["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HTTPValidationError"}
    create = operation(document, "/users", "post")["responses"]
    assert set(create) == {"201", "409", "422"}
    assert create["201"]["description"] == "Created"
    assert create["409"]["description"] == "Name taken"
    listed = operation(document, "/users", "get")
    assert listed["summary"] == "List Users", "from the name without a docstring"
    assert listed["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array", "items": {"$ref": "#/components/schemas/UserOut"}}
    assert "422" not in listed["responses"], "no parameters, no validation error"
    delete = operation(document, "/users/{user_id}", "delete")
    assert delete["deprecated"] is True and delete["operationId"] == "remove_user"
    assert delete["summary"] == "Remove a user" and delete["description"] == "Gone for good."
    assert delete["responses"]["204"] == {"description": "No Content"}
    stats = operation(document, "/v1/admin/stats", "get")
    assert stats["responses"]["200"]["content"]["application/json"]["schema"] == {}


def test_422_schema_matches_the_bodies_the_app_sends(document: dict[str, Any]) -> None:
    schema = {"$ref": "#/components/schemas/HTTPValidationError",
              "components": document["components"]}
    validator = jsonschema.Draft202012Validator(schema)
    bad_requests = [
        ("get", "/users/5?limit=500&ids=x", {"headers": {"x-token": "t"}}),
        ("get", "/users/5", {}),  # the header is missing
        ("post", "/users", {"json": {"name": "", "age": -1, "favourite": "blue"}}),
        ("post", "/users", {"content": b"{not json", "headers": {
            "content-type": "application/json"}}),
        ("post", "/orders", {"json": {"lines": [{"sku": "a", "qty": "lots"}]}}),
        ("post", "/login", {"data": {"username": "ada", "password": "short"}}),
        ("post", "/upload", {"data": {"caption": "no files"}}),
    ]
    with TestClient(build_app()) as client:
        for method, url, kwargs in bad_requests:
            response = client.request(method, url, **kwargs)
            assert response.status_code == 422, (url, response.text)
            body = response.json()
            validator.validate(body)
            assert body["detail"] and all(e["loc"][0] in ("path", "query", "header", "cookie",
                                                          "body") for e in body["detail"])
        assert not validator.is_valid({"detail": [{"loc": "body", "msg": "x", "type": "t"}]})
        assert not validator.is_valid({"detail": [{"msg": "no loc", "type": "t"}]})


def test_successful_bodies_match_their_response_schemas(document: dict[str, Any]) -> None:
    def validator(path: str, method: str, status: str) -> jsonschema.Draft202012Validator:
        schema = operation(document, path, method)["responses"][status]["content"][
            "application/json"]["schema"]
        return jsonschema.Draft202012Validator({**schema, "components": document["components"]})

    with TestClient(build_app()) as client:
        read = client.get("/users/5", headers={"x-token": "t"})
        assert read.json() == {"id": 5, "name": "ada"}
        validator("/users/{user_id}", "get", "200").validate(read.json())
        created = client.post("/users", json={"name": "bo", "age": 3})
        assert created.status_code == 201
        validator("/users", "post", "201").validate(created.json())
        validator("/users", "get", "200").validate(client.get("/users").json())


class Item(BaseModel):
    name: str


class NotAModel:
    pass


def test_models_with_the_same_name_get_distinct_components() -> None:
    other = types.ModuleType("other_shop")
    exec("from pydantic import BaseModel\nclass Item(BaseModel):\n    code: int\n",
         other.__dict__)
    app = QakeAPI(title="t", version="1")

    @app.post("/a", response_model=Item)
    async def a(item: Item) -> Item:
        return item

    async def b(item: Any) -> Any:
        return item

    b.__annotations__ = {"item": other.Item, "return": Any}  # this module's names are Items
    app.add_route("/b", b, methods=["POST"], response_model=other.Item)

    document = app.openapi()
    validate(document)
    refs = {path: item["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            for path, item in document["paths"].items()}
    assert refs["/a"] != refs["/b"]
    schemas = {r: resolve(document, {"$ref": r}) for r in refs.values()}
    assert {tuple(s["properties"]) for s in schemas.values()} == {("name",), ("code",)}


class ValidationError(BaseModel):
    field: str


def test_a_user_model_named_like_the_error_models_keeps_its_own_schema() -> None:
    app = QakeAPI(title="t", version="1")

    @app.post("/report", response_model=ValidationError)
    async def report(error: ValidationError) -> ValidationError:
        return error

    document = app.openapi()
    validate(document)
    op = operation(document, "/report", "post")
    mine = resolve(document, op["requestBody"]["content"]["application/json"]["schema"])
    assert list(mine["properties"]) == ["field"]
    detail = resolve(document, op["responses"]["422"]["content"]["application/json"]["schema"])
    item = resolve(document, detail["properties"]["detail"]["items"])
    assert set(item["properties"]) >= {"loc", "msg", "type"}


def test_models_whose_names_pydantic_could_not_resolve_when_defined() -> None:
    # String annotations in a module Pydantic can't import (exec'd code, a notebook): the
    # handler's globals resolve them.
    source = (
        "from __future__ import annotations\n"
        "from pydantic import BaseModel\n"
        "from qakeapi import QakeAPI\n"
        "class Size(BaseModel):\n    n: int\n"
        "class Pet(BaseModel):\n    size: Size\n"
        "app = QakeAPI(title='t', version='1')\n"
        "@app.post('/pets', response_model=Pet)\n"
        "async def create(pet: Pet) -> Pet:\n    return pet\n")
    ns: dict[str, Any] = {"__name__": "not_importable"}
    exec(compile(source, "<notebook>", "exec", dont_inherit=True), ns)
    assert not ns["Pet"].__pydantic_complete__
    document = ns["app"].openapi()
    validate(document)
    assert document["components"]["schemas"]["Pet"]["properties"]["size"] == {
        "$ref": "#/components/schemas/Size"}


def test_the_document_is_cached_and_rebuilt_after_a_new_route() -> None:
    app = QakeAPI(title="t", version="1")

    @app.get("/one")
    async def one() -> dict[str, int]:
        return {}

    first = app.openapi()
    assert app.openapi() is first
    with TestClient(app) as client:
        assert client.get("/openapi.json").json() == first

    @app.get("/two")
    async def two() -> dict[str, int]:
        return {}

    assert set(app.openapi()["paths"]) == {"/one", "/two"}


def test_a_router_alone_and_servers() -> None:
    router = Router(prefix="/pets", tags=["pets"])

    @router.get("/{pet_id}")
    async def pet(pet_id: int) -> dict[str, int]:
        return {"id": pet_id}

    document = build_openapi(router, title="Pets", version="1",
                             servers=[{"url": "https://api.example.com"}])
    validate(document)
    assert document["servers"] == [{"url": "https://api.example.com"}]
    assert operation(document, "/pets/{pet_id}", "get")["tags"] == ["pets"]


def test_path_parameters_the_handler_does_not_take_are_still_declared() -> None:
    app = QakeAPI(title="t", version="1")

    @app.get("/files/{kind}/{n:int}")
    async def files() -> dict[str, int]:
        return {}

    document = app.openapi()
    validate(document)
    params = params_by_name(operation(document, "/files/{kind}/{n}", "get"))
    assert params["kind"]["schema"] == {"type": "string"}
    assert params["n"]["schema"] == {"type": "integer", "minimum": 0}


class Limits(BaseModel):
    top: float = float("inf")
    step: float = 0.5


def test_defaults_without_a_json_form_are_left_out() -> None:
    app = QakeAPI(title="t", version="1")

    @app.get("/range")
    async def in_range(low: float = float("-inf"), high: float = float("nan"),
                       scale: float = 1.5, marker: Annotated[str, Query()] = "\u2603",
                       ) -> dict[str, float]:
        return {"low": low}

    @app.post("/limits")
    async def limits(limit: Limits) -> dict[str, float]:
        return {"top": limit.top}

    no_json = "Default value inf is not JSON serializable"
    with TestClient(app) as client, pytest.warns(UserWarning, match=no_json):
        served = client.get("/openapi.json")
    assert served.status_code == 200
    validate(served.json())
    assert served.json()["components"]["schemas"]["Limits"]["properties"] == {
        "top": {"title": "Top", "type": "number"}, "step": {"title": "Step", "type": "number",
                                                            "default": 0.5}}
    params = params_by_name(operation(served.json(), "/range", "get"))
    assert "default" not in params["low"]["schema"] and "default" not in params["high"]["schema"]
    assert params["scale"]["schema"]["default"] == 1.5
    assert params["marker"]["schema"]["default"] == "\u2603"


def test_bad_options_are_clear_errors() -> None:
    app = QakeAPI(title="t", version="1")

    @app.get("/a", operation_id="same")
    async def a() -> None:
        return None

    @app.get("/b", operation_id="same")
    async def b() -> None:
        return None

    with pytest.raises(ValueError, match=r"operation_id 'same' of GET /b .* GET /a"):
        app.openapi()

    app = QakeAPI(title="t", version="1")

    @app.get("/c", responses={404: NotAModel})
    async def c() -> None:
        return None

    with pytest.raises(TypeError, match=r"GET /c: responses\[404\]: no JSON Schema"):
        app.openapi()

    app = QakeAPI(title="t", version="1")

    @app.get("/d", responses={999: "Too far"})
    async def d() -> None:
        return None

    with pytest.raises(ValueError, match="GET /d: responses key 999 is not an HTTP status"):
        app.openapi()


def test_more_responses() -> None:
    app = QakeAPI(title="t", version="1")

    @app.get("/pets", response_model=list[UserOut],
             responses={200: {"description": "The pets", "headers": {
                 "X-Total": {"schema": {"type": "integer"}}}},
                        404: UserOut, "4XX": "A client error", "default": {"model": Address}})
    async def pets() -> list[dict[str, Any]]:
        return []

    document = app.openapi()
    validate(document)
    responses = operation(document, "/pets", "get")["responses"]
    assert responses["200"]["description"] == "The pets"
    assert responses["200"]["headers"] == {"X-Total": {"schema": {"type": "integer"}}}
    assert responses["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert responses["404"] == {"description": "Not Found", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/UserOut"}}}}
    assert responses["4XX"] == {"description": "A client error",
                                "content": {"application/json": {"schema": {}}}}
    assert responses["default"]["description"] == "Default Response"


def test_auto_operation_ids_stay_unique() -> None:
    app = QakeAPI(title="t", version="1")

    async def handler() -> None:
        return None

    app.add_route("/x-y", handler, name="same")
    app.add_route("/x_y", handler, name="same")
    app.add_route("/z", handler, operation_id="same_x_y_get")  # given ids keep their names
    document = app.openapi()
    validate(document)
    ids = [item["get"]["operationId"] for item in document["paths"].values()]
    assert ids == ["same_x_y_get_2", "same_x_y_get_3", "same_x_y_get"]


class Product(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    tags: list[str] = []


def test_the_same_app_in_fastapi_gets_the_same_document() -> None:
    fastapi = pytest.importorskip("fastapi")
    from qakeapi import params

    handler = (  # compiled without this module's `from __future__ import annotations`,
        # which FastAPI can't resolve for names local to a function
        "async def make(product_id: Annotated[int, m.Path(ge=1)], product: Product,\n"
        "               q: Annotated[str | None, m.Query(max_length=5)] = None,\n"
        "               ids: Annotated[list[int], m.Query()] = [],\n"
        "               x_key: Annotated[str, m.Header()] = 'k') -> Product:\n"
        "    return product\n")

    def add(app: Any, markers: Any) -> Any:
        ns = {"Annotated": Annotated, "Product": Product, "m": markers}
        exec(compile(handler, "<handler>", "exec", dont_inherit=True), ns)
        app.post("/products/{product_id}", response_model=Product, status_code=201,
                 tags=["products"])(ns["make"])
        return app.openapi()

    theirs = add(fastapi.FastAPI(), fastapi)
    ours = add(QakeAPI(), params)
    validate(ours)

    def untitled(value: Any) -> Any:  # FastAPI titles parameter schemas ("Product Id")
        if isinstance(value, dict):
            return {k: untitled(v) for k, v in value.items() if k != "title"}
        if isinstance(value, list):
            return [untitled(v) for v in value]
        return value

    mine, fastapis = (doc["paths"]["/products/{product_id}"]["post"] for doc in (ours, theirs))
    assert untitled(mine["parameters"]) == untitled(fastapis["parameters"])
    assert mine["requestBody"] == fastapis["requestBody"]
    assert mine["operationId"] == fastapis["operationId"]
    assert {code: r.get("content") for code, r in mine["responses"].items()} == {
        code: r.get("content") for code, r in fastapis["responses"].items()}
    for name in ("Product", "HTTPValidationError", "ValidationError"):
        assert ours["components"]["schemas"][name] == theirs["components"]["schemas"][name]
