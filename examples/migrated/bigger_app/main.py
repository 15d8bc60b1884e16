"""The app: a dependency for every route, its routers included, and one route of its own."""

from __future__ import annotations

from qakeapi import Depends, QakeAPI

from .dependencies import get_query_token, get_token_header
from .internal import admin
from .routers import items, users

app = QakeAPI(dependencies=[Depends(get_query_token)])

app.include_router(users.router)
app.include_router(items.router)
app.include_router(
    admin.router,
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(get_token_header)],
    responses={418: {"description": "I'm a teapot"}},
)


@app.get("/")
async def root() -> dict[str, str]:
    return {"message": "Hello Bigger Applications!"}
