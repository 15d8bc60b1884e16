"""FastAPI's ``background_tasks: BackgroundTasks`` parameter: what it holds becomes qakeapi
background tasks, started after the response (and after yield-dependency teardown); none
when the handler raises."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import BackgroundTasks as FastAPIBackgroundTasks
from starlette.background import BackgroundTasks

from qakeapi import Depends, HTTPException, QakeAPI
from qakeapi._params import plan_callable
from qakeapi.testing import AsyncTestClient, TestClient

EVENTS: list[str] = []


def record(what: str, *, suffix: str = "") -> None:
    EVENTS.append(what + suffix)


def session() -> Iterator[str]:
    yield "s"
    EVENTS.append("session closed")


def audit(tasks: BackgroundTasks) -> str:
    tasks.add_task(record, "audit")
    return "audited"


def make_app() -> QakeAPI:
    app = QakeAPI()

    @app.post("/orders/{order_id}")
    async def place(order_id: int, background_tasks: FastAPIBackgroundTasks,
                    s: str = Depends(session), a: str = Depends(audit)) -> dict[str, Any]:
        background_tasks.add_task(record, f"receipt {order_id}", suffix="!")
        EVENTS.append("handler")
        return {"order": order_id}

    @app.post("/fails")
    async def fails(background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(record, "never")
        raise HTTPException(409, "no")

    return app


@pytest.fixture(autouse=True)
def _clear() -> None:
    EVENTS.clear()


def test_tasks_start_after_the_response_and_the_teardown() -> None:
    app = make_app()
    plan = app.routes[0].endpoint.plan
    assert [(p.name, p.source) for p in plan.params][1] == ("background_tasks", "background")
    assert plan.has_teardown and plan.http_params() == [plan.params[0]]
    with TestClient(app) as client:
        assert client.post("/orders/7").json() == {"order": 7}
    # One BackgroundTasks per request, shared with the dependency that asked for it.
    assert EVENTS[:2] == ["handler", "session closed"]
    assert sorted(EVENTS[2:]) == ["audit", "receipt 7!"]


@pytest.mark.anyio
async def test_no_task_when_the_handler_raises() -> None:
    async with AsyncTestClient(make_app()) as client:
        response = await client.post("/fails")
    assert response.status_code == 409
    assert EVENTS == []


def test_background_tasks_without_exit_stack_is_a_clear_error() -> None:
    import anyio

    from qakeapi.dependencies import Container, DependencyError
    from qakeapi.requests import Request

    async def handler(tasks: BackgroundTasks) -> None:
        return None

    plan = plan_callable(handler, path_params=())
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}

    async def run() -> None:
        await plan.resolve(Request(scope), Container())

    with pytest.raises(DependencyError, match="takes BackgroundTasks"):
        anyio.run(run)
