"""The README's example app: in-process background tasks and durable queued tasks.

Run it with ``qakeapi run examples.shop:app`` from the repository root. Queued tasks go to
``shop-queue.db`` (SQLite) next to where you start it, unless ``QUEUE_URL`` says otherwise;
the app's embedded worker runs them, so nothing else needs to be started.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import anyio

from qakeapi import HTTPException, Inject, QakeAPI
from qakeapi.core.background import add_background_task
from qakeapi.queued_tasks import QueuedTasks, getLogger, set_context

app = QakeAPI(queue_url=os.environ.get("QUEUE_URL", "sqlite:///shop-queue.db"))
log = logging.getLogger("shop")


async def send_welcome_email(email: str) -> None:
    """In-process background task: runs after the response has been sent."""
    await anyio.sleep(0.1)
    log.warning("welcome email sent to %s", email)


async def build_report(report_id: int, pages: int = 5) -> dict[str, Any]:
    """Queued task: durable, retried on failure, progress visible from the CLI."""
    logger = getLogger("shop.reports")
    set_context("report.id", report_id)
    for page in range(1, pages + 1):
        await anyio.sleep(0.4)
        set_context("progress", page * 100 // pages)
        logger.info("page %d/%d rendered", page, pages)
    return {"report_id": report_id, "pages": pages}


async def email_report(report_id: int) -> dict[str, Any]:
    """Queued task that starts only after build_report succeeded (``parent=``)."""
    getLogger("shop.reports").info("report %d emailed", report_id)
    return {"emailed": report_id}


@app.post("/users")
async def create_user(user: dict[str, Any]) -> dict[str, Any]:
    if "email" not in user:
        raise HTTPException(422, "email is required")
    await add_background_task(send_welcome_email, user["email"])
    return {"message": "User created"}


@app.post("/reports/{report_id}")
async def create_report(
    report_id: int, pages: int = 5, tasks: QueuedTasks = Inject(QueuedTasks)
) -> dict[str, Any]:
    build = tasks.add_task(build_report, report_id, pages)
    mail = tasks.add_task(email_report, report_id, parent=build)
    return {"queued": True, "task_id": build.id, "email_task_id": mail.id}


@app.get("/tasks/{task_id}")
async def task_status(task_id: str, tasks: QueuedTasks = Inject(QueuedTasks)) -> dict[str, Any]:
    record = await tasks.get(task_id)
    if record is None:
        raise HTTPException(404, f"no task {task_id}")
    return {
        "id": record.id,
        "status": record.status.value,
        "progress": record.context.get("progress"),
        "result": record.result,
    }
