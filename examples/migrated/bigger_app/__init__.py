"""FastAPI's "Bigger Applications - Multiple Files" tutorial app, moved over to qakeapi.

``APIRouter`` is ``Router`` (same ``prefix``, ``tags`` and ``responses``); ``Depends``,
``Header`` and ``HTTPException`` are imported from ``qakeapi``. FastAPI's
``dependencies=[Depends(...)]`` on the app, on a router and on ``include_router`` has no
counterpart yet: each route takes those dependencies as parameters instead (see
docs/migrating.md). Run it with ``qakeapi run examples.migrated.bigger_app.main:app``.
"""
