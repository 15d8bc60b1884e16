"""qakeapi: an ASGI micro-framework whose background tasks grow into durable queued tasks.

Background tasks run in the process after the response (``add_background_task``); queued
tasks (``QueuedTasks.add_task``) are stored in the backend named by ``QUEUE_URL`` and run by
workers, with dependencies, retries, progress and logs.
"""

from __future__ import annotations

from .app import QakeAPI
from .core.background import BackgroundTaskManager, BackgroundTaskRef, add_background_task
from .dependencies import Depends, Inject
from .events import EventBus
from .exceptions import (
    BackendUnavailable,
    ConfigurationError,
    CorruptTaskError,
    HTTPException,
    ManagerNotRunning,
    MissingParentError,
    NoRetry,
    QakeAPIError,
    QueueError,
    RequestValidationError,
    Retry,
    SerializationError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotFound,
    TaskNotRegistered,
    TaskWaitTimeout,
    TooManyPendingTasks,
)
from .params import Body, Cookie, File, Form, Header, Path, Query, UploadFile
from .queued_tasks import QueuedTasks, QueueSettings, TaskRef, get_context, getLogger, set_context
from .requests import Request
from .responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from .routing import RouteOptions, Router
from .tasks_asgi import TaskMiddleware, queued_tasks_dependency, tasks_lifespan
from .types import TaskErrorInfo, TaskRecord, TaskStatus
from .websockets import WebSocket, WebSocketDisconnect

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "BackgroundTaskManager",
    "BackgroundTaskRef",
    "Body",
    "ConfigurationError",
    "Cookie",
    "CorruptTaskError",
    "Depends",
    "EventBus",
    "File",
    "Form",
    "HTMLResponse",
    "HTTPException",
    "Header",
    "Inject",
    "JSONResponse",
    "ManagerNotRunning",
    "MissingParentError",
    "NoRetry",
    "Path",
    "PlainTextResponse",
    "QakeAPI",
    "QakeAPIError",
    "Query",
    "QueueError",
    "QueueSettings",
    "QueuedTasks",
    "Request",
    "RequestValidationError",
    "Response",
    "Retry",
    "RouteOptions",
    "Router",
    "SerializationError",
    "TaskCancelledError",
    "TaskErrorInfo",
    "TaskFailedError",
    "TaskMiddleware",
    "TaskNotFound",
    "TaskNotRegistered",
    "TaskRecord",
    "TaskRef",
    "TaskStatus",
    "TaskWaitTimeout",
    "TooManyPendingTasks",
    "UploadFile",
    "WebSocket",
    "WebSocketDisconnect",
    "__version__",
    "add_background_task",
    "getLogger",
    "get_context",
    "queued_tasks_dependency",
    "set_context",
    "tasks_lifespan",
]
