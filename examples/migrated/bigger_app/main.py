"""The app: its routers included, and one route of its own."""

from __future__ import annotations

from qakeapi import Depends, QakeAPI

from .dependencies import get_query_token
from .internal import admin
from .routers import items, users

app = QakeAPI()

app.include_router(users.router)
app.include_router(items.router)
app.include_router(admin.router, prefix="/admin")


@app.get("/")
async def root(_token: None = Depends(get_query_token)) -> dict[str, str]:
    return {"message": "Hello Bigger Applications!"}
