"""QakeAPI 1.3.1's ``examples/rate_limit_example.py``, moved over to qakeapi.

What changed (docs/migrating.md has the whole list):

* ``@rate_limit(requests_per_minute=10, window_seconds=60)`` *above* ``@app.get`` became
  ``@rate_limit("10/minute")`` *under* it; ``requests_per_minute=20, window_seconds=30`` is
  ``"20/30 seconds"``; ``key_func`` is ``key`` (a function of the request's connection).
* The counters are in the queue's storage (``QUEUE_URL``): with ``sqlite:///tasks.db`` or
  ``redis://...`` the limits hold across server processes, not per process as in 1.3.1.
* ``CORSMiddleware(allow_origins=["*"])`` (an instance) is Starlette's middleware, added by
  class; 1.3.1 allowed every method and header unless told, Starlette only GET and simple
  headers, so ``allow_methods=["*"], allow_headers=["*"]`` keep what 1.3.1 did.
* Headers are ``RateLimit-Limit/Remaining/Reset`` and ``Retry-After``; a refused request's
  body is ``{"detail": "rate limit exceeded: ..."}``.

Run it with ``qakeapi run examples.migrated.rate_limit_app:app``.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection

from qakeapi import QakeAPI, Request
from qakeapi.ratelimit import client_ip, rate_limit

app = QakeAPI(debug=True)
app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"],
                   allow_headers=["*"])


@app.get("/limited")
@rate_limit("10/minute")
def limited_endpoint() -> dict[str, str]:
    """Endpoint with rate limiting - 10 requests per minute."""
    return {"message": "This endpoint is rate limited", "limit": "10 requests per minute"}


@app.get("/strict")
@rate_limit("5/minute")
def strict_endpoint() -> dict[str, str]:
    """Endpoint with strict rate limiting - 5 requests per minute."""
    return {"message": "This endpoint has strict rate limiting",
            "limit": "5 requests per minute"}


@app.post("/upload")
@rate_limit("20/30 seconds")
async def upload_endpoint(request: Request) -> dict[str, Any]:
    """Upload endpoint with a custom window."""
    data = await request.json()
    return {"message": "Upload endpoint", "limit": "20 requests per 30 seconds",
            "received": data}


@app.get("/unlimited")
def unlimited_endpoint() -> dict[str, str]:
    """Endpoint without rate limiting."""
    return {"message": "This endpoint has no rate limiting"}


def user_and_address(connection: HTTPConnection) -> str:
    # 1.3.1's key_func named the route and still counted per IP (per_ip=True).
    return f"user:{connection.headers.get('user-id', 'anonymous')}|{client_ip(connection)}"


@app.get("/user-specific")
@rate_limit("3/minute", key=user_and_address)
def user_specific_endpoint() -> dict[str, str]:
    """Rate limit per user ID from a header."""
    return {"message": "Rate limited per user", "limit": "3 requests per minute per user"}


@app.get("/public")
@rate_limit("100/minute")
def public_endpoint() -> dict[str, str]:
    """Public endpoint with a higher limit."""
    return {"message": "Public endpoint", "limit": "100/min"}


@app.get("/api/data")
@rate_limit("10/minute")
def api_data() -> dict[str, str]:
    """API endpoint with a lower limit."""
    return {"message": "API data", "limit": "10/min"}
