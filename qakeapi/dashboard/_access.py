"""Who may see the dashboard and act on it: the ``auth=`` check and CSRF tokens.

``auth`` is either a token string or a callable taking the request (sync or async) that
returns True to let it in. A token is accepted in the ``X-Dashboard-Token`` header, in an
``Authorization: Bearer`` header, or in the session cookie the login form sets (the cookie
holds an HMAC of the token, never the token). Every comparison is constant-time.

Actions are POSTed forms carrying a CSRF token: an HMAC, keyed by a per-app secret, of a
random value kept in its own cookie (double submit tied to that cookie).
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeAlias

from starlette.requests import Request
from starlette.responses import Response

from ..constants import DASHBOARD_COOKIE, DASHBOARD_CSRF_COOKIE, DASHBOARD_TOKEN_HEADER
from ..exceptions import ConfigurationError

__all__ = ["Access", "AuthCheck"]

AuthCheck: TypeAlias = Callable[[Request], "bool | Awaitable[bool]"]


def _digest(key: str, value: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


class Access:
    """Checks requests against ``auth`` and issues and verifies CSRF tokens."""

    def __init__(self, auth: str | AuthCheck) -> None:
        if isinstance(auth, str):
            if len(auth) < 8:
                raise ConfigurationError(
                    "dashboard auth token must be at least 8 characters long")
            self.token: str | None = auth
            self._check: AuthCheck | None = None
        elif callable(auth):
            self.token = None
            self._check = auth
        else:
            raise ConfigurationError(
                "dashboard(auth=...) must be a token string or a callable taking the request; "
                f"got {type(auth).__name__}")
        self._secret = secrets.token_hex(32)

    @property
    def uses_login(self) -> bool:
        """True when a person can sign in with the token through the login form."""
        return self.token is not None

    def session_value(self) -> str:
        assert self.token is not None
        return _digest(self.token, "dashboard-session")

    def token_matches(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def allows(self, request: Request) -> bool:
        if self._check is not None:
            answer = self._check(request)
            if inspect.isawaitable(answer):
                answer = await answer
            return answer is True
        given = request.headers.get(DASHBOARD_TOKEN_HEADER)
        if given is None:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and value:
                given = value
        if given is not None:
            return self.token_matches(given)
        cookie = request.cookies.get(DASHBOARD_COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self.session_value().encode())

    # -- CSRF -----------------------------------------------------------------------
    def csrf_token(self, request: Request) -> tuple[str, str | None]:
        """The form token for this request, and a new cookie value to set (or None)."""
        seed = request.cookies.get(DASHBOARD_CSRF_COOKIE)
        fresh = None
        if not seed or len(seed) > 128:
            seed = fresh = secrets.token_hex(16)
        return _digest(self._secret, seed), fresh

    def csrf_ok(self, request: Request, form_token: str) -> bool:
        seed = request.cookies.get(DASHBOARD_CSRF_COOKIE)
        if not seed or not form_token:
            return False
        return hmac.compare_digest(form_token.encode(), _digest(self._secret, seed).encode())

    @staticmethod
    def set_cookie(response: Response, name: str, value: str, path: str) -> None:
        response.set_cookie(name, value, path=path, httponly=True, samesite="strict")
