"""Users: a router without a prefix, its routes tagged one by one."""

from __future__ import annotations

from qakeapi import Router

router = Router()


@router.get("/users/", tags=["users"])
async def read_users() -> list[dict[str, str]]:
    return [{"username": "Rick"}, {"username": "Morty"}]


@router.get("/users/me", tags=["users"])
async def read_user_me() -> dict[str, str]:
    return {"username": "fakecurrentuser"}


@router.get("/users/{username}", tags=["users"])
async def read_user(username: str) -> dict[str, str]:
    return {"username": username}
