"""The uvicorn HTTP protocol ``qakeapi run`` serves with: uvicorn's, plus a header timeout.

uvicorn drops a keep-alive connection that stays idle after a response, but nothing bounds
the time before a request's headers are complete: a connection that never sends a byte, or
sends its request line and headers a few bytes at a time, is held for ever. Here a timer runs
from the moment a connection opens (and again from the end of each response) until a request's
headers have been read; when it fires the connection is closed. The timeout is read from
``QAKEAPI_HEADER_TIMEOUT`` (seconds, 0 = none), which ``qakeapi run --header-timeout`` sets, so
that worker processes started by uvicorn see it too.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from .constants import ENV_HEADER_TIMEOUT, SERVER_HEADER_TIMEOUT
from .http_limits import check_timeout, setting_from_env

__all__ = ["HeaderTimeoutH11Protocol", "header_timeout_from_env", "protocol_class"]

logger = logging.getLogger("qakeapi.server")


def header_timeout_from_env() -> float:
    return check_timeout(
        setting_from_env(os.environ, ENV_HEADER_TIMEOUT, float, "number", SERVER_HEADER_TIMEOUT),
        ENV_HEADER_TIMEOUT)


class _HeaderTimeout:
    """Mixed into a uvicorn HTTP/1.1 protocol (it reads ``cycle`` and ``transport``)."""

    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    _header_timer: asyncio.TimerHandle | None = None
    _header_timeout: float = 0.0

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        if self._header_timeout:
            self._header_timer = self.loop.call_later(self._header_timeout,
                                                      self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            logger.debug("closing a connection that sent no complete request headers within "
                         "%s s", self._header_timeout)
            self.transport.close()

    def _after_data(self, cycle_before: Any) -> None:
        if self._header_timer is not None and self.cycle is not cycle_before:
            self._cancel_header_timer()  # a request's headers have been read


class HeaderTimeoutH11Protocol(_HeaderTimeout, H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout_from_env()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)
        self._after_data(cycle)

    def on_response_complete(self) -> None:
        cycle = self.cycle
        self._arm_header_timer()
        super().on_response_complete()  # may start a pipelined request at once
        self._after_data(cycle)

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._cancel_header_timer()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)


def protocol_class() -> type[asyncio.Protocol]:
    """The protocol for ``uvicorn.run(http=...)``."""
    return HeaderTimeoutH11Protocol
