"""Routes (qakeapi.routing): return values as responses, sync handlers off the event loop,
routers with prefixes and verbs, bad routes refused when they are added."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from qakeapi import QakeAPI, Request, Router
from qakeapi.responses import JSONResponse, PlainTextResponse
from qakeapi.testing import TestClient


def test_return_values() -> None:
    app = QakeAPI()

    @app.get("/list")
    def as_list() -> list[int]:
        return [1, 2]

    @app.post("/created")
    async def created() -> tuple[dict[str, bool], int]:
        return {"created": True}, 201

    @app.get("/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("hi", status_code=202)

    @app.get("/none")
    async def nothing() -> None:
        return None

    with TestClient(app) as client:
        assert client.get("/list").json() == [1, 2]
        created_response = client.post("/created")
        assert (created_response.status_code, created_response.json()) == (201, {"created": True})
        text_response = client.get("/text")
        assert (text_response.status_code, text_response.text) == (202, "hi")
        assert client.get("/none").json() is None


def test_routers_with_prefix() -> None:
    router = Router()

    @router.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    app = QakeAPI()
    app.include_router(router, prefix="/api")
    with TestClient(app) as client:
        assert client.get("/api/items/3").json() == {"item": 3}
        assert client.get("/items/3").status_code == 404


def test_bad_routes_are_refused() -> None:
    app = QakeAPI()
    with pytest.raises(ValueError, match="must start with"):
        app.add_route("nope", lambda: None)
    with pytest.raises(TypeError, match="callable"):
        app.add_route("/x", "not a function")  # type: ignore[arg-type]


def test_tuples_set_the_status_of_text_json_and_responses() -> None:
    app = QakeAPI()

    @app.get("/text")
    async def text() -> tuple[str, int]:
        return "made", 201

    @app.get("/response")
    async def response() -> tuple[JSONResponse, int]:
        return JSONResponse({"a": 1}, headers={"x-kept": "yes"}), 409

    with TestClient(app) as client:
        made = client.get("/text")
        assert (made.status_code, made.text) == (201, "made")
        assert made.headers["content-type"].startswith("text/plain")
        conflict = client.get("/response")
        assert (conflict.status_code, conflict.json()) == (409, {"a": 1})
        assert conflict.headers["x-kept"] == "yes"


def test_a_sync_handler_runs_in_a_thread_not_on_the_event_loop() -> None:
    app = QakeAPI()
    released = threading.Event()

    @app.get("/wait")
    def wait() -> dict[str, bool]:
        return {"released": released.wait(10)}

    @app.get("/release")
    async def release() -> dict[str, bool]:
        released.set()
        return {"ok": True}

    with TestClient(app) as client, ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(client.get, "/wait")
        assert client.get("/release").json() == {"ok": True}
        assert waiting.result(20).json() == {"released": True}


def test_router_verbs_prefixes_and_nesting() -> None:
    inner = Router(prefix="/items/")

    @inner.put("/{item_id}")
    async def put(item_id: int) -> dict[str, object]:
        return {"put": item_id}

    @inner.patch("/{item_id}")
    async def patch(item_id: int) -> dict[str, object]:
        return {"patch": item_id}

    @inner.delete("/{item_id}", name="remove")
    async def delete(item_id: int) -> tuple[None, int]:
        return None, 204

    outer = Router()
    outer.include_router(inner, prefix="/v1/")
    app = QakeAPI()
    app.include_router(outer, prefix="/api")
    with TestClient(app) as client:
        assert client.put("/api/v1/items/3").json() == {"put": 3}
        assert client.patch("/api/v1/items/4").json() == {"patch": 4}
        assert client.delete("/api/v1/items/5").status_code == 204
        assert client.get("/api/v1/items/5").status_code == 405
    assert "remove" in {getattr(route, "name", None) for route in app.routes}


def test_only_routes_that_need_it_leave_the_short_path() -> None:
    """The benchmark's endpoint (request only, returns a dict) keeps the old short path:
    no response object, no exit stack; each option moves a route off it."""
    app = QakeAPI()

    async def plain(request: Request) -> dict[str, bool]:
        return {"ok": True}

    app.add_route("/plain", plain)
    app.add_route("/created", plain, status_code=201)
    app.add_route("/model", plain, response_model=dict[str, bool])
    app.add_route("/tagged", plain, tags=["docs only"], summary="no effect on the answer")
    simple = {route.path: route.endpoint.simple for route in app.routes}
    assert simple == {"/plain": True, "/created": False, "/model": False, "/tagged": True}
    with TestClient(app) as client:
        assert [client.get(path).status_code for path in simple] == [200, 201, 200, 200]


def _is_mobile(request: Request) -> bool:
    return "Mobile" in request.headers.get("user-agent", "")


def test_conditional_route_falls_through_to_the_next_route_of_its_path() -> None:
    app = QakeAPI()
    seen: list[str] = []

    def for_owner(request: Request) -> bool:
        seen.append(request.path_params["user"])
        return request.path_params["user"] == "ada" and request.query_params.get("me") == "1"

    @app.get("/page", condition=_is_mobile)
    async def mobile_page() -> dict[str, str]:
        return {"page": "mobile"}

    @app.get("/page")
    async def page() -> dict[str, str]:
        return {"page": "desktop"}

    @app.get("/users/{user}", condition=for_owner)
    async def own_profile(user: str) -> dict[str, str]:
        return {"profile": "own", "user": user}

    @app.get("/users/{user}")
    async def profile(user: str) -> dict[str, str]:
        return {"profile": "public", "user": user}

    with TestClient(app) as client:
        assert client.get("/page", headers={"user-agent": "Mobile Safari"}).json() == {
            "page": "mobile"}
        assert client.get("/page", headers={"user-agent": "curl"}).json() == {"page": "desktop"}
        assert client.get("/users/ada?me=1").json() == {"profile": "own", "user": "ada"}
        assert client.get("/users/bob?me=1").json() == {"profile": "public", "user": "bob"}
    assert seen == ["ada", "bob"]


def test_conditional_route_alone_is_a_404_for_the_others() -> None:
    app = QakeAPI()

    @app.get("/beta", condition=lambda request: request.cookies.get("beta") == "yes")
    async def beta() -> dict[str, bool]:
        return {"beta": True}

    with TestClient(app) as client:
        assert client.get("/beta", headers={"cookie": "beta=yes"}).json() == {"beta": True}
        assert client.get("/beta").status_code == 404


def test_conditional_route_in_a_router_and_in_openapi() -> None:
    router = Router(prefix="/v1")

    @router.get("/page", condition=_is_mobile, summary="Mobile page")
    async def mobile_page() -> dict[str, str]:
        return {"page": "mobile"}

    @router.get("/page", summary="Page")
    async def page() -> dict[str, str]:
        return {"page": "desktop"}

    app = QakeAPI()
    app.include_router(router)
    with TestClient(app) as client:
        assert client.get("/v1/page", headers={"user-agent": "Mobile"}).json() == {
            "page": "mobile"}
        assert client.get("/v1/page").json() == {"page": "desktop"}
        # the document shows the route every client can reach
        assert client.get("/openapi.json").json()["paths"]["/v1/page"]["get"]["summary"] == "Page"


def test_a_condition_that_raises_is_a_server_error() -> None:
    app = QakeAPI()

    def broken(request: Request) -> bool:
        raise RuntimeError("condition broke")

    @app.get("/x", condition=broken)
    async def x() -> dict[str, bool]:
        return {"x": True}

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/x").status_code == 500
    with TestClient(app) as client, pytest.raises(RuntimeError, match="condition broke"):
        client.get("/x")


@pytest.mark.parametrize("condition", ["mobile", 3, "async"])
def test_a_condition_must_be_a_plain_function(condition: object) -> None:
    app = QakeAPI()
    if condition == "async":
        async def condition(request: Request) -> bool:
            return True

    with pytest.raises(TypeError, match="condition must be a plain function"):
        @app.get("/x", condition=condition)  # type: ignore[arg-type]
        async def x() -> None:
            return None
