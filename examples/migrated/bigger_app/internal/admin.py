"""An admin router, shared between projects: main.py gives it its prefix, tags, responses and
dependency when it includes it."""

from __future__ import annotations

from qakeapi import Router

router = Router()


@router.post("/")
async def update_admin() -> dict[str, str]:
    return {"message": "Admin getting schwifty"}
