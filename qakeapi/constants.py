"""Named defaults, in one place. Environment variable names are listed beside them."""

from __future__ import annotations

# --- in-process background tasks -------------------------------------------------
BACKGROUND_MAX_CONCURRENCY = 256
"""Tasks the manager runs at once; more wait in its pending queue."""
BACKGROUND_MAX_PENDING = 10_000
"""Pending tasks the manager holds before ``add_task`` waits (backpressure)."""
BACKGROUND_THREAD_LIMIT = 40
"""Threads for plain-function tasks (separate from the threads serving sync handlers)."""
BACKGROUND_RETAIN_FINISHED = 1_000
"""Finished records kept for ``manager.tasks[id]`` (oldest evicted first)."""
BACKGROUND_RETAIN_SECONDS = 3600.0
"""Finished records older than this are evicted."""
SHUTDOWN_GRACE_SECONDS = 10.0
"""How long shutdown waits for running tasks before cancelling them."""

# --- queued tasks: environment variables -----------------------------------------
ENV_QUEUE_URL = "QUEUE_URL"
ENV_QUEUE_MAX_WORKERS = "QUEUE_MAX_WORKERS"
ENV_QUEUE_TASK_TIMEOUT = "QUEUE_TASK_TIMEOUT"
ENV_QUEUE_MAX_RETRIES = "QUEUE_MAX_RETRIES"
ENV_QUEUE_LEASE_SECONDS = "QUEUE_LEASE_SECONDS"
ENV_QUEUE_EMBEDDED_WORKER = "QUEUE_EMBEDDED_WORKER"
ENV_QUEUE_RETENTION_SECONDS = "QUEUE_RETENTION_SECONDS"
ENV_QUEUE_SHUTDOWN_GRACE = "QUEUE_SHUTDOWN_GRACE"

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
WORKER_STALE_SECONDS = 3 * DEFAULT_LEASE_SECONDS
"""A worker whose last heartbeat is older is not shown as live."""
PROGRESS_FLUSH_SECONDS = 0.5
"""A running task's changed context/logs are stored at most this often."""
FANOUT_CHUNK = 1_000
"""Children a queue backend releases, cancels or revives per step (one SQLite transaction or
one Redis script), so a parent with a huge fan-out never holds the backend for long."""
