"""An admin router: its tags and responses are given here, since ``include_router`` takes a
prefix only (FastAPI's main.py gives them to ``include_router``)."""

from __future__ import annotations

from qakeapi import Depends, Router

from ..dependencies import get_query_token, get_token_header

router = Router(tags=["admin"], responses={418: {"description": "I'm a teapot"}})


@router.post("/")
async def update_admin(_token: None = Depends(get_query_token),
                       _header: None = Depends(get_token_header)) -> dict[str, str]:
    return {"message": "Admin getting schwifty"}
