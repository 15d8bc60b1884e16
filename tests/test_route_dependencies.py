"""``dependencies=[Depends(check)]`` on routes, routers, include_router and the app: run
before the handler for their effect, in order app → include → router → route, their
parameters validated (422) and documented, their values not passed to the handler."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest

from qakeapi import Depends, HTTPException, QakeAPI, Router
from qakeapi.params import Header, Query
from qakeapi.testing import TestClient

calls: list[str] = []


def app_check() -> None:
    calls.append("app")


def include_check() -> None:
    calls.append("include")


def router_check(x_token: Annotated[str, Header()]) -> None:
    calls.append("router")
    if x_token != "secret":
        raise HTTPException(403, "bad token")


def route_check(limit: Annotated[int, Query(ge=1)] = 10) -> str:
    calls.append(f"route:{limit}")
    return "ignored"


def session() -> Iterator[None]:
    calls.append("open")
    yield
    calls.append("close")


def build() -> QakeAPI:
    calls.clear()
    router = Router(prefix="/items", dependencies=[Depends(router_check)])

    @router.get("/", dependencies=[Depends(route_check), session])
    async def list_items(q: str = "") -> dict[str, Any]:
        calls.append("handler")
        return {"q": q}

    @router.post("/")
    def add_item(item: dict[str, Any]) -> dict[str, Any]:  # sync handler
        calls.append("handler")
        return item

    app = QakeAPI(dependencies=[Depends(app_check)])
    app.include_router(router, dependencies=[Depends(include_check)], tags=["items"])
    return app


def test_route_router_include_and_app_dependencies_run_in_order() -> None:
    with TestClient(build()) as client:
        response = client.get("/items/?q=pen&limit=3", headers={"x-token": "secret"})
        assert response.json() == {"q": "pen"}
        assert calls == ["app", "include", "router", "route:3", "open", "handler", "close"]
        calls.clear()
        assert client.post("/items/", json={"a": 1},
                           headers={"x-token": "secret"}).json() == {"a": 1}
        assert calls == ["app", "include", "router", "handler"]


def test_a_failing_dependency_stops_the_handler() -> None:
    with TestClient(build()) as client:
        refused = client.get("/items/", headers={"x-token": "nope"})
        assert (refused.status_code, refused.json()) == (403, {"detail": "bad token"})
        assert "handler" not in calls
        calls.clear()
        missing = client.get("/items/")
        assert missing.status_code == 422
        assert missing.json()["detail"][0]["loc"] == ["header", "x-token"]
        calls.clear()
        too_small = client.get("/items/?limit=0", headers={"x-token": "secret"})
        assert too_small.status_code == 422
        assert too_small.json()["detail"][0]["loc"] == ["query", "limit"]
        assert "handler" not in calls


def test_dependency_parameters_are_in_openapi() -> None:
    with TestClient(build()) as client:
        operation = client.get("/openapi.json").json()["paths"]["/items/"]["get"]
    names = {p["name"]: p["in"] for p in operation["parameters"]}
    assert names == {"q": "query", "limit": "query", "x-token": "header"}
    assert operation["tags"] == ["items"]


@pytest.mark.parametrize("bad", ["check", [3], [Depends()]])
def test_bad_dependencies_are_clear_errors(bad: Any) -> None:
    app = QakeAPI()
    with pytest.raises(TypeError, match="dependencies"):
        @app.get("/x", dependencies=bad)
        async def x() -> None:
            return None
