"""Dependency trees: per-request caching, sub-dependencies with HTTP parameters, overrides,
and the startup check of providers."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import BaseModel

from qakeapi import Body, Depends, Header, Inject, QakeAPI, Query
from qakeapi._params import plan_callable
from qakeapi.dependencies import DependencyError, check_dependencies
from qakeapi.requests import Request
from qakeapi.testing import AsyncTestClient, TestClient
from qakeapi.websockets import WebSocket


class Paging(BaseModel):
    limit: int
    offset: int


class NeedsArgs:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn


class Settings:
    def __init__(self) -> None:
        self.name = "real"


CALLS: list[str] = []


async def session(request: Request) -> dict[str, Any]:
    CALLS.append(request.url.path)
    return {"id": len(CALLS)}


def test_a_dependency_used_twice_in_one_request_runs_once() -> None:
    app = QakeAPI()
    calls = CALLS
    calls.clear()

    def repo(s: dict[str, Any] = Depends(session)) -> dict[str, Any]:
        return s

    def fresh(s: dict[str, Any] = Depends(session, use_cache=False)) -> dict[str, Any]:
        return s

    @app.get("/cached")
    async def cached(a: dict[str, Any] = Depends(session), b: dict[str, Any] = Depends(repo),
                     c: Annotated[dict[str, Any] | None, Inject(session)] = None
                     ) -> dict[str, Any]:
        return {"same": a is b is c}

    @app.get("/fresh")
    async def uncached(a: dict[str, Any] = Depends(session),
                       b: dict[str, Any] = Depends(fresh)) -> dict[str, Any]:
        return {"same": a is b}

    with TestClient(app) as client:
        assert client.get("/cached").json() == {"same": True}
        assert calls == ["/cached"]
        assert client.get("/cached").json() == {"same": True}
        assert calls == ["/cached", "/cached"]  # once per request, not once for good
        calls.clear()
        assert client.get("/fresh").json() == {"same": False}
        assert calls == ["/fresh", "/fresh"]


def test_container_factories_run_once_per_request() -> None:
    app = QakeAPI()
    made: list[int] = []

    def connection() -> int:
        made.append(1)
        return len(made)

    app.container.register_factory("conn", connection)

    def repo(conn: int = Inject("conn")) -> int:
        return conn

    @app.get("/")
    async def index(a: int = Inject("conn"), b: int = Depends(repo),
                    c: int = Inject("conn", use_cache=False)) -> list[int]:
        return [a, b, c]

    with TestClient(app) as client:
        assert client.get("/").json() == [1, 1, 2]
        assert client.get("/").json() == [3, 3, 4]


def test_sub_dependencies_take_query_header_and_body_parameters() -> None:
    app = QakeAPI()

    def paging(limit: Annotated[int, Query(ge=1, le=50)] = 10, offset: int = 0) -> Paging:
        return Paging(limit=limit, offset=offset)

    async def caller(x_user: str = Header(), p: Paging = Depends(paging)) -> str:
        return f"{x_user}@{p.limit}"

    @app.post("/items")
    async def items(who: str = Depends(caller), p: Paging = Depends(paging),
                    note: str = Body(embed=True)) -> dict[str, Any]:
        return {"who": who, "offset": p.offset, "note": note}

    with TestClient(app) as client:
        ok = client.post("/items?limit=5&offset=2", headers={"x-user": "ada"},
                         json={"note": "n"})
        assert ok.json() == {"who": "ada@5", "offset": 2, "note": "n"}
        bad = client.post("/items?limit=0&offset=x", json={})
    assert bad.status_code == 422
    # Each failing parameter once, though ``paging`` is used twice.
    assert sorted(tuple(e["loc"]) for e in bad.json()["detail"]) == [
        ("body", "note"), ("header", "x-user"), ("query", "limit"), ("query", "offset")]

    plan = app.routes[0].endpoint.plan
    assert [(p.source, p.alias) for p in plan.http_params()] == [
        ("header", "x-user"), ("query", "limit"), ("query", "offset"), ("body", "note")]
    assert [p.name for p in plan.body_params()] == ["note"]
    assert not plan.has_teardown


def test_depends_without_argument_uses_the_annotation_and_overrides_win() -> None:
    def get_name() -> str:
        return "real"

    app = QakeAPI()

    @app.get("/")
    async def index(settings: Settings = Depends(), name: str = Depends(get_name)
                    ) -> dict[str, str]:
        return {"settings": settings.name, "name": name}

    with TestClient(app) as client:
        assert client.get("/").json() == {"settings": "real", "name": "real"}
    app.container.register_factory(get_name, lambda: "override")
    with TestClient(app) as client:
        assert client.get("/").json() == {"settings": "real", "name": "override"}


@pytest.mark.parametrize("target", ["app", "routes"])
def test_startup_check_names_the_handler_of_a_missing_provider(target: str) -> None:
    app = QakeAPI()

    def needs_db(db: NeedsArgs = Inject(NeedsArgs)) -> str:
        return db.dsn

    @app.get("/fine")
    async def fine(request: Request) -> None:
        return None

    @app.get("/orders/{order_id}")
    async def orders(order_id: int, dsn: str = Depends(needs_db)) -> None:
        return None

    with pytest.raises(DependencyError, match=r"'.*orders' \(/orders/\{order_id\}\).*"
                                              r"NeedsArgs: its constructor needs arguments"):
        check_dependencies(app if target == "app" else list(app.routes), app.container)
    app.container.register(NeedsArgs, NeedsArgs("sqlite://"))
    check_dependencies(app)


def test_startup_check_follows_registered_factories_and_keys() -> None:
    app = QakeAPI()

    def make_repo(db: NeedsArgs = Inject(NeedsArgs)) -> str:
        return db.dsn

    app.container.register_factory("repo", make_repo)

    @app.get("/a")
    async def uses_repo(repo: str = Inject("repo")) -> None:
        return None

    with pytest.raises(DependencyError, match=r"uses_repo.*NeedsArgs"):
        check_dependencies(app)
    app.container.register(NeedsArgs, NeedsArgs("x"))
    check_dependencies(app)

    @app.get("/b")
    async def uses_key(thing: Any = Inject("nothing-here")) -> None:
        return None

    with pytest.raises(DependencyError,
                       match=r"uses_key.*nothing is registered for 'nothing-here'"):
        check_dependencies(app)


@pytest.mark.anyio
async def test_a_missing_provider_stops_the_app_starting() -> None:
    app = QakeAPI()
    started: list[bool] = []

    @app.on_startup
    def hook() -> None:
        started.append(True)

    @app.get("/")
    async def index(thing: Any = Inject("nothing-here")) -> None:
        return None

    with pytest.raises(DependencyError, match=r"'.*index' \(/\)"):
        async with AsyncTestClient(app):
            pass
    assert started == []


def test_dependency_plans_refuse_unfillable_parameters_at_registration() -> None:
    from qakeapi import Form

    def broken(x: object = Form()) -> None:
        return None

    async def handler(value: None = Depends(broken), item: Paging = Body()) -> None:
        return None

    with pytest.raises(TypeError, match="can't be mixed"):
        plan_callable(handler, path_params=())


def test_depends_on_an_unresolvable_annotation_is_refused_at_registration() -> None:
    class Local:
        pass

    async def handler(thing: Local = Depends()) -> None:
        return None

    with pytest.raises(TypeError, match="'thing': can't resolve the annotation 'Local'"):
        plan_callable(handler, path_params=())


def test_startup_check_covers_websocket_routes_and_routers() -> None:
    from qakeapi import Router

    app = QakeAPI()

    @app.websocket("/ws")
    async def feed(websocket: WebSocket, db: NeedsArgs = Inject(NeedsArgs)) -> None:
        await websocket.close()

    with pytest.raises(DependencyError, match=r"feed' \(/ws\)"):
        check_dependencies(app)

    other = QakeAPI()
    router = Router()

    @router.get("/r")
    async def routed(thing: Any = Inject("absent")) -> None:
        return None

    other.include_router(router, prefix="/api")
    with pytest.raises(DependencyError, match=r"routed' \(/api/r\)"):
        check_dependencies(other)
