"""Users: a router without a prefix, its routes tagged one by one."""

from __future__ import annotations

from qakeapi import Depends, Router

from ..dependencies import get_query_token

router = Router()


@router.get("/users/", tags=["users"])
async def read_users(_token: None = Depends(get_query_token)) -> list[dict[str, str]]:
    return [{"username": "Rick"}, {"username": "Morty"}]


@router.get("/users/me", tags=["users"])
async def read_user_me(_token: None = Depends(get_query_token)) -> dict[str, str]:
    return {"username": "fakecurrentuser"}


@router.get("/users/{username}", tags=["users"])
async def read_user(username: str, _token: None = Depends(get_query_token)) -> dict[str, str]:
    return {"username": username}
