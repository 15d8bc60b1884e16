"""FastAPI's "Bigger Applications - Multiple Files" tutorial app, moved over to qakeapi.

``APIRouter`` is ``Router`` (same ``prefix``, ``tags``, ``responses`` and ``dependencies``);
``Depends``, ``Header`` and ``HTTPException`` are imported from ``qakeapi``; the rest is as
in the tutorial. Run it with ``qakeapi run examples.migrated.bigger_app.main:app``.
"""
