"""What a Redis failure means to qakeapi, for the queue's storage and the rate-limit counters:
an unreachable server or a refused password is :class:`BackendUnavailable` naming where."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis import exceptions as redis_errors

from .exceptions import BackendUnavailable

__all__ = ["UNREACHABLE", "unavailable_as_backend_error"]

UNREACHABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)
"""The errors of a server that can't be reached (or went away mid-call)."""


@contextmanager
def unavailable_as_backend_error(where: str) -> Iterator[None]:
    """Raise ``BackendUnavailable`` for a refused password or an unreachable server at
    ``where``; any other error (a script's, a wrong type) goes through unchanged."""
    try:
        yield
    except redis_errors.AuthenticationError as exc:
        raise BackendUnavailable(f"Redis at {where} refused the password: {exc}") from exc
    except UNREACHABLE as exc:
        raise BackendUnavailable(f"Redis at {where} is unreachable: {exc}") from exc
    except redis_errors.ResponseError as exc:
        if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            raise BackendUnavailable(f"Redis at {where} refused the password: {exc}") from exc
        raise
