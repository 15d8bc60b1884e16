"""Queue settings, from arguments or the environment (``QUEUE_*`` variables)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..constants import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_QUEUE_MAX_RETRIES,
    DEFAULT_QUEUE_MAX_WORKERS,
    DEFAULT_QUEUE_TASK_TIMEOUT,
    DEFAULT_QUEUE_URL,
    DEFAULT_RETENTION_SECONDS,
    ENV_QUEUE_EMBEDDED_WORKER,
    ENV_QUEUE_LEASE_SECONDS,
    ENV_QUEUE_MAX_RETRIES,
    ENV_QUEUE_MAX_WORKERS,
    ENV_QUEUE_RETENTION_SECONDS,
    ENV_QUEUE_SHUTDOWN_GRACE,
    ENV_QUEUE_STRICT,
    ENV_QUEUE_TASK_TIMEOUT,
    ENV_QUEUE_URL,
    RETRY_BASE_DELAY,
    RETRY_MAX_DELAY,
    SETTING_MAX_COUNT,
    SHUTDOWN_GRACE_SECONDS,
    WORKER_STALE_LEASES,
)
from ..core._options import check_count, check_seconds
from ..exceptions import ConfigurationError

__all__ = ["QueueSettings"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _check_positive_seconds(name: str, value: object) -> float:
    seconds = check_seconds(name, value)
    if seconds <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return seconds


@dataclass(slots=True, frozen=True)
class QueueSettings:
    url: str = DEFAULT_QUEUE_URL
    max_workers: int = DEFAULT_QUEUE_MAX_WORKERS
    """Tasks one worker process runs at once (QUEUE_MAX_WORKERS)."""
    task_timeout: float = DEFAULT_QUEUE_TASK_TIMEOUT
    """Seconds per attempt; 0 = no timeout (QUEUE_TASK_TIMEOUT)."""
    max_retries: int = DEFAULT_QUEUE_MAX_RETRIES
    """Retries after the first attempt (QUEUE_MAX_RETRIES)."""
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    """How long a claimed task stays claimed without a heartbeat (QUEUE_LEASE_SECONDS)."""
    embedded_worker: bool = True
    """Run a worker inside the app process (QUEUE_EMBEDDED_WORKER)."""
    retention_seconds: float = DEFAULT_RETENTION_SECONDS
    """How long finished tasks are kept (QUEUE_RETENTION_SECONDS)."""
    retry_base_delay: float = RETRY_BASE_DELAY
    retry_max_delay: float = RETRY_MAX_DELAY
    shutdown_grace: float = SHUTDOWN_GRACE_SECONDS
    """Seconds a stopping worker lets running tasks finish (QUEUE_SHUTDOWN_GRACE)."""
    strict: bool = False
    """Workers run registered functions only, never one found by name (QUEUE_STRICT)."""

    @property
    def worker_stale_seconds(self) -> float:
        """A worker whose last heartbeat is older is not live (it is gone or stuck)."""
        return self.lease_seconds * WORKER_STALE_LEASES

    def __post_init__(self) -> None:
        for field, env, check in (
            ("max_workers", ENV_QUEUE_MAX_WORKERS,
             lambda n, v: check_count(n, v, minimum=1, maximum=SETTING_MAX_COUNT)),
            ("task_timeout", ENV_QUEUE_TASK_TIMEOUT, check_seconds),
            ("max_retries", ENV_QUEUE_MAX_RETRIES, check_count),
            ("lease_seconds", ENV_QUEUE_LEASE_SECONDS, _check_positive_seconds),
            ("retention_seconds", ENV_QUEUE_RETENTION_SECONDS, check_seconds),
            ("retry_base_delay", None, check_seconds),
            ("retry_max_delay", None, check_seconds),
            ("shutdown_grace", ENV_QUEUE_SHUTDOWN_GRACE, check_seconds),
        ):
            name = f"QueueSettings.{field}" + (f" ({env})" if env else "")
            try:
                object.__setattr__(self, field, check(name, getattr(self, field)))
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None

    @property
    def timeout(self) -> float | None:
        return self.task_timeout or None

    def replace(self, **changes: Any) -> QueueSettings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> QueueSettings:
        """Settings from ``QUEUE_*`` variables; a bad value names its variable."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get(ENV_QUEUE_URL):
            values["url"] = env[ENV_QUEUE_URL]
        for var, field, kind in (
            (ENV_QUEUE_MAX_WORKERS, "max_workers", int),
            (ENV_QUEUE_TASK_TIMEOUT, "task_timeout", float),
            (ENV_QUEUE_MAX_RETRIES, "max_retries", int),
            (ENV_QUEUE_LEASE_SECONDS, "lease_seconds", float),
            (ENV_QUEUE_RETENTION_SECONDS, "retention_seconds", float),
            (ENV_QUEUE_SHUTDOWN_GRACE, "shutdown_grace", float),
        ):
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[field] = kind(raw)
            except ValueError:
                raise ConfigurationError(
                    f"{var}={raw!r} is not a valid {kind.__name__}"
                ) from None
        for var, field in ((ENV_QUEUE_EMBEDDED_WORKER, "embedded_worker"),
                           (ENV_QUEUE_STRICT, "strict")):
            raw_flag = env.get(var)
            if raw_flag is None:
                continue
            lowered = raw_flag.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise ConfigurationError(f"{var}={raw_flag!r} is not a boolean (use 1 or 0)")
            values[field] = lowered in _TRUE
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
