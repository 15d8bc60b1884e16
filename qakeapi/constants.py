"""Named defaults, in one place. Environment variable names are listed beside them."""

from __future__ import annotations

# --- in-process background tasks -------------------------------------------------
BACKGROUND_MAX_CONCURRENCY = 256
"""Tasks the manager runs at once; more wait in its pending queue."""
BACKGROUND_MAX_PENDING = 10_000
"""Pending tasks the manager holds before ``add_task`` waits (backpressure)."""
BACKGROUND_YIELD_EVERY = 256
"""While tasks are pending, ``add_task`` lets the runners in once per this many tasks added
(a loop adding tasks would otherwise fill the queue before the first one starts)."""
BACKGROUND_THREAD_LIMIT = 40
"""Threads for plain-function tasks (separate from the threads serving sync handlers)."""
BACKGROUND_RETAIN_FINISHED = 1_000
"""Finished records kept for ``manager.tasks[id]`` (oldest evicted first)."""
BACKGROUND_RETAIN_SECONDS = 3600.0
"""Finished records older than this are evicted."""
SHUTDOWN_GRACE_SECONDS = 10.0
"""How long shutdown waits for running tasks before cancelling them."""

# --- HTTP requests ------------------------------------------------------------------
ENV_MAX_BODY_SIZE = "QAKEAPI_MAX_BODY_SIZE"
ENV_BODY_TIMEOUT = "QAKEAPI_BODY_TIMEOUT"
DEFAULT_MAX_BODY_SIZE = 1024 * 1024
"""Bytes of request body an app accepts (413 beyond); 0 means no limit."""
DEFAULT_BODY_TIMEOUT = 30.0
"""Seconds from the first read of a request body to its last byte (408 beyond); 0 = none."""

# --- rate limiting --------------------------------------------------------------------
RATELIMIT_SWEEP_EVERY = 1_000
"""New windows a rate-limit storage opens between two sweeps of its expired counters (SQLite
rows, in-memory entries; Redis keys expire by themselves)."""
RATELIMIT_MAX_KEY_CHARS = 200
"""Longest client key stored as it is; a longer one (say, from a header) is stored as its
SHA-256 digest, so a client can't make the storage hold huge keys."""
RATELIMIT_MAX_AMOUNT = 1_000_000_000
"""Most requests a rate may allow per period (a larger number is surely a typo)."""
RATELIMIT_MAX_PERIOD = 366 * 24 * 3600.0
"""Longest period a rate may have, in seconds."""

# --- `qakeapi run` (uvicorn) --------------------------------------------------------
SERVER_TIMEOUT_KEEP_ALIVE = 5
"""Seconds an idle keep-alive connection stays open after a response."""
ENV_HEADER_TIMEOUT = "QAKEAPI_HEADER_TIMEOUT"
SERVER_HEADER_TIMEOUT = 10.0
"""Seconds a connection may take to send a request's line and headers; 0 = none."""
SERVER_LIMIT_CONCURRENCY = 1000
"""Connections and tasks one server process takes before answering 503."""
SERVER_BACKLOG = 2048
SERVER_H11_MAX_INCOMPLETE_EVENT_SIZE = 16 * 1024
"""Bytes of request line and headers buffered before the request is refused."""
SERVER_TIMEOUT_GRACEFUL_SHUTDOWN = 30
"""Seconds a stopping server waits for open connections before closing them."""

# --- queued tasks: environment variables -----------------------------------------
ENV_QUEUE_URL = "QUEUE_URL"
ENV_QUEUE_MAX_WORKERS = "QUEUE_MAX_WORKERS"
ENV_QUEUE_TASK_TIMEOUT = "QUEUE_TASK_TIMEOUT"
ENV_QUEUE_MAX_RETRIES = "QUEUE_MAX_RETRIES"
ENV_QUEUE_LEASE_SECONDS = "QUEUE_LEASE_SECONDS"
ENV_QUEUE_EMBEDDED_WORKER = "QUEUE_EMBEDDED_WORKER"
ENV_QUEUE_RETENTION_SECONDS = "QUEUE_RETENTION_SECONDS"
ENV_QUEUE_SHUTDOWN_GRACE = "QUEUE_SHUTDOWN_GRACE"
ENV_QUEUE_STRICT = "QUEUE_STRICT"

# --- queued tasks: defaults -------------------------------------------------------
DEFAULT_QUEUE_URL = "memory://"
DEFAULT_QUEUE_MAX_WORKERS = 10
DEFAULT_QUEUE_TASK_TIMEOUT = 300.0
"""Seconds; 0 means no timeout."""
DEFAULT_QUEUE_MAX_RETRIES = 3
DEFAULT_LEASE_SECONDS = 30.0
"""A claimed task's lease; renewed every ``lease / HEARTBEAT_FRACTION`` seconds."""
HEARTBEAT_FRACTION = 3
DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600.0
"""Finished queued tasks (records, results, logs) are kept this long."""
RETRY_BASE_DELAY = 1.0
RETRY_MAX_DELAY = 300.0
RETRY_JITTER = 0.25
"""Backoff delay is multiplied by a random factor in [1 - jitter, 1 + jitter]."""
IDLE_RECHECK_SECONDS = 5.0
"""An idle worker re-checks the queue this often even with no notification (safety net)."""
TASK_LOG_LINES = 200
"""Log lines kept per queued task (the most recent)."""
TASK_LOG_LINE_CHARS = 2000
"""A longer log line is truncated."""
WORKER_STALE_LEASES = 3
"""A worker whose last heartbeat is older than this many leases is not live."""
WORKER_STALE_SECONDS = WORKER_STALE_LEASES * DEFAULT_LEASE_SECONDS
"""A worker whose last heartbeat is older is not shown as live."""
PROGRESS_FLUSH_SECONDS = 0.5
"""A running task's changed context/logs are stored at most this often."""
NOTIFY_DIR_SUFFIX = ".qakeapi"
"""SQLite wake-up sockets live in ``.<database file name>.qakeapi`` beside the file."""
UNIX_SOCKET_PATH_MAX = 107
"""Longest Unix socket path (bytes, without the final NUL); longer directories are skipped."""
BIND_ATTEMPTS = 3
"""Tries to bind a wake-up socket while other listeners may remove the directory."""
SUPERVISOR_CHECK_SECONDS = 0.5
"""How often ``queue start --workers N`` checks its worker processes."""
SUPERVISOR_STABLE_SECONDS = 10.0
"""A worker process that ran this long before dying is restarted with the shortest backoff."""
SUPERVISOR_BACKOFF_BASE = 0.5
SUPERVISOR_BACKOFF_MAX = 30.0
"""Restart delays double from the base to the max while a worker process keeps dying young."""
SUPERVISOR_MAX_QUICK_FAILURES = 5
"""The supervisor gives up (exit 1) when one worker process dies young this many times in a
row."""
SAME_STOP_SIGNAL_SECONDS = 1.0
"""A worker takes a second SIGINT/SIGTERM this soon after the first as the same stop (sent by
both its supervisor and a service manager, or by a terminal to the process group), not as
"force"."""
MAX_JSON_DEPTH = 200
"""Deepest nesting of lists/dicts in a queued task's arguments, result and context: deeper
values are refused at ``add_task`` and a stored row nested deeper is read as corrupt."""
CORRUPT_ROW = "corrupt row"
"""How the reason of a task failed because its stored row can't be read begins."""
FANOUT_CHUNK = 1_000
"""Children a queue backend releases, cancels or revives per step (one SQLite transaction or
one Redis script), so a parent with a huge fan-out never holds the backend for long."""
ID_RANGE_CHUNK_SIZE = 200
"""Ids per task ``enqueue_id_range_tasks`` makes unless given ``chunk_size``."""
ID_RANGE_MAX_TASKS = 10_000
"""Most tasks one ``enqueue_id_range_tasks`` call stores (one batch): more is a mistake in
``chunk_size`` or in the ids."""

# --- task options: the bounds add_task checks (same for every backend) ----------------
OPTION_MAX_SECONDS = 10 * 365 * 24 * 3600.0
"""Largest ``delay`` or ``timeout`` accepted (ten years): larger ones are mistakes."""
OPTION_MAX_RETRIES = 1_000
"""Largest ``max_retries`` / ``retries`` accepted."""
PRIORITY_MIN = -1_000
PRIORITY_MAX = 1_000
"""``priority`` range: every backend (Redis sorts on a float score) orders it exactly."""
OPTION_MAX_KEY_CHARS = 256
"""Longest ``unique_key`` or parent task id accepted."""
SETTING_MAX_COUNT = 1_000_000_000
"""Largest count setting (threads, pending tasks, records kept...) accepted."""

# --- dashboard ------------------------------------------------------------------------
DASHBOARD_POLL_SECONDS = 1.0
"""How often a dashboard reads storage while at least one live page is open (one shared read
per dashboard app, none while no page is open)."""
DASHBOARD_FULL_READ_SECONDS = 10.0
"""A live dashboard reads the stats, workers and watched tasks again after this long even when
the storage's change marker says nothing changed (time alone brings scheduled tasks due)."""
DASHBOARD_POLL_BACKOFF = 10
"""The dashboard's next shared read waits at least this many times as long as the last one
took, so a queue whose counts are slow to read is never read back to back."""
DASHBOARD_STREAM_SECONDS = 10.0
"""A live page's event stream ends after this long and the browser opens a new one: a server
shutting down waits for open responses, so no page holds it up for longer."""
DASHBOARD_PAGE_SIZE = 50
"""Tasks per page of the dashboard's task list."""
DASHBOARD_NAME_MAX_CHARS = 500
"""Longest task name the task list's name filter accepts."""
DASHBOARD_RECENT_SAMPLE = 200
"""Newest tasks the overview reads (one first-page read) for its one-hour chart, and most
running tasks it reads to show what each worker runs."""
DASHBOARD_CHART_BUCKETS = 12
"""Bars of the overview's one-hour chart (five minutes each)."""
DASHBOARD_GRAPH_TASKS = 50
"""Most parents and most children a task page lists."""
DASHBOARD_LOG_LINES = 500
"""Most log lines a task page shows."""
TASK_PAGE_MAX = 1_000
"""Most tasks one ``page()`` of a queue returns (``limit`` above it is refused)."""
DASHBOARD_COOKIE = "qakeapi_dashboard"
DASHBOARD_CSRF_COOKIE = "qakeapi_dashboard_csrf"
DASHBOARD_TOKEN_HEADER = "X-Dashboard-Token"
ENV_DASHBOARD_TOKEN = "QAKEAPI_DASHBOARD_TOKEN"
# --- observability: metrics, traces, live views --------------------------------------------
TASK_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                         60.0, 300.0, 900.0, 3600.0)
"""Upper bounds (seconds) of the ``qakeapi_task_duration_seconds`` histogram's buckets."""
TRACE_CONTEXT_KEY = "qakeapi.trace"
"""Key of a queued task's ``context`` holding the W3C trace context of the request that added
it (``traceparent``, ``tracestate``). Its dot keeps it apart from user keys, which can't hold
one, and out of ``get_context``'s reach."""
TRACEPARENT_MAX_CHARS = 55
"""Length of a version-00 W3C ``traceparent`` header."""
TRACESTATE_MAX_CHARS = 512
"""Longest W3C ``tracestate`` a task carries (the spec's limit for propagation)."""
WATCH_DEFAULT_SECONDS = 2.0
"""``qakeapi queue status --watch`` refreshes this often unless told otherwise."""
WATCH_MIN_SECONDS = 0.1
"""Shortest ``--interval`` accepted: faster refreshes only load the backend."""

# --- OpenAPI and /docs ---------------------------------------------------------------
OPENAPI_VERSION = "3.1.0"
"""The OpenAPI version of the documents ``qakeapi.openapi.build_openapi`` writes."""
DEFAULT_OPENAPI_URL = "/openapi.json"
DEFAULT_DOCS_URL = "/docs"
DOCS_EXTRA = "docs"
"""The extra that installs Swagger UI for ``/docs``: ``pip install "qakeapi[docs]"``."""
SWAGGER_UI_DISTRIBUTION = "swagger-ui-py"
SWAGGER_UI_PACKAGE = "swagger_ui"
"""Its import name: the package is located (``static/``), never imported."""
DOCS_ASSET_MAX_AGE = 365 * 24 * 3600
"""Seconds browsers may cache Swagger UI's files: their URLs name the package's version."""

__all__ = sorted(name for name in tuple(globals()) if name.isupper())
"""Every named default above."""
# --- web: WebSocket close codes (RFC 6455) ---------------------------------------------------
WS_CLOSE_NORMAL = 1000
"""A WebSocket whose handler returned without closing it is closed so."""
WS_CLOSE_POLICY_VIOLATION = 1008
"""A WebSocket whose parameters can't be filled (or a dependency refused) is closed so."""
WS_CLOSE_INTERNAL_ERROR = 1011
"""A WebSocket whose handler raised is closed so."""

ROUTED_HANDLER_MARK = "__qakeapi_routed__"
"""Attribute a route decorator sets on the handler it registered: a decorator that must go
under ``@app.get(...)`` (``@rate_limit``) sees it when it was put above, where it would wrap
a function the route no longer calls."""

