"""``/openapi.json`` and the ``/docs`` page (Swagger UI), served when no route of the app
matches.

Swagger UI's JavaScript and CSS come from the ``swagger-ui-py`` package (the ``docs`` extra)
and are served by the app itself, so the page works without reaching a CDN (air-gapped
hosts, strict CSPs). Their URLs carry the package's version, so browsers may cache them for
a year; the page itself is revalidated on every load. The page runs no inline script: the
URL of the document travels in a ``data-`` attribute read by a small script served beside
the assets, so a ``script-src 'self'`` policy allows it.
"""

from __future__ import annotations

import html
import importlib.metadata
import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from .constants import DOCS_ASSET_MAX_AGE, DOCS_EXTRA, SWAGGER_UI_DISTRIBUTION, SWAGGER_UI_PACKAGE
from .responses import HTMLResponse, JSONResponse

__all__ = ["docs_app", "swagger_ui_assets"]

logger = logging.getLogger("qakeapi.openapi")

ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
"""The files of the package the page loads; nothing else in its folder is served."""
INIT_SCRIPT = "qakeapi-docs.js"
INSTALL_HINT = f'pip install "qakeapi[{DOCS_EXTRA}]"'

_INIT_JS = """\
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""

_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/{init}"></script>
</body>
</html>
"""

_MISSING_PAGE = """\
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>API docs unavailable</title></head>
<body>
<h1>API docs unavailable</h1>
<p>The <code>/docs</code> page needs Swagger UI, which is not installed:
<code>{hint}</code>. The OpenAPI document is served at
<a href="{openapi_url}">{openapi_url}</a>.</p>
</body>
</html>
"""


def swagger_ui_assets() -> tuple[Path, str] | None:
    """The folder holding Swagger UI's files and the version naming their URLs, or None when
    the ``docs`` extra is not installed. The package is located, not imported: importing it
    would load its template engine, which the page does not use."""
    try:
        spec = importlib.util.find_spec(SWAGGER_UI_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "static"
        if all((folder / name).is_file() for name in ASSETS):
            break
    else:
        return None
    try:
        version = importlib.metadata.version(SWAGGER_UI_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        # Installed some other way: the bundle's size still changes with each release.
        version = f"b{(folder / ASSETS[0]).stat().st_size}"
    return folder, version


class _Docs:
    """The three endpoints. Swagger UI's folder is looked up once, on first use (so an app
    that never serves ``/docs`` never looks; installing the extra takes a restart)."""

    def __init__(self, openapi: Callable[[], dict[str, Any]], title: Callable[[], str],
                 openapi_url: str, docs_url: str) -> None:
        self.openapi = openapi
        self.title = title
        self.openapi_url = openapi_url
        self.docs_url = docs_url.rstrip("/") or "/"
        self._assets: tuple[Path, str, StaticFiles] | None = None
        self._looked = False

    async def _found(self) -> tuple[Path, str, StaticFiles] | None:
        if not self._looked:
            found = await anyio.to_thread.run_sync(swagger_ui_assets)  # reads the disk
            if found is None:
                logger.warning("%s needs Swagger UI, which is not installed: %s",
                               self.docs_url, INSTALL_HINT)
            else:
                folder, version = found
                self._assets = (folder, version, StaticFiles(directory=folder))
            self._looked = True
        return self._assets

    def _assets_url(self, root_path: str, version: str) -> str:
        base = "" if self.docs_url == "/" else self.docs_url
        return f"{root_path}{base}/assets/{version}"

    async def document(self, request: Request) -> Response:
        # The first build runs Pydantic over every model: off the event loop.
        return await anyio.to_thread.run_sync(self._document)

    def _document(self) -> Response:
        return JSONResponse(self.openapi())

    async def page(self, request: Request) -> Response:
        root_path = request.scope.get("root_path", "")
        openapi_url = html.escape(root_path + self.openapi_url)
        found = await self._found()
        if found is None:
            return HTMLResponse(_MISSING_PAGE.format(hint=html.escape(INSTALL_HINT),
                                                     openapi_url=openapi_url),
                                status_code=501, headers={"Cache-Control": "no-store"})
        _folder, version, _static = found
        body = _PAGE.format(title=html.escape(f"{self.title()} - docs"),
                            assets=html.escape(self._assets_url(root_path, version)),
                            openapi_url=openapi_url, init=INIT_SCRIPT)
        return HTMLResponse(body, headers={"Cache-Control": "no-cache"})

    async def asset(self, request: Request) -> Response:
        found = await self._found()
        name = request.path_params["name"]
        if found is None or request.path_params["version"] != found[1]:
            return Response("Not Found", status_code=404, media_type="text/plain")
        cache = {"Cache-Control": f"public, max-age={DOCS_ASSET_MAX_AGE}, immutable"}
        if name == INIT_SCRIPT:
            return Response(_INIT_JS, media_type="text/javascript", headers=cache)
        if name not in ASSETS:
            return Response("Not Found", status_code=404, media_type="text/plain")
        response = await found[2].get_response(name, request.scope)
        response.headers.update(cache)
        return response


def docs_app(openapi: Callable[[], dict[str, Any]], *, title: Callable[[], str],
             openapi_url: str | None, docs_url: str | None, fallback: ASGIApp) -> ASGIApp:
    """An ASGI app serving ``openapi()`` at ``openapi_url`` and Swagger UI at ``docs_url``
    (``None`` leaves either out; the page needs the document, so it goes with it), and
    passing every other request to ``fallback``.

    The app installs it as its router's ``default`` (what answers when no route matches), so
    these pages never hide one of the app's routes and are not among ``app.routes``."""
    if openapi_url is None:
        return fallback
    if not openapi_url.startswith("/"):
        raise ValueError(f"openapi_url must start with '/': {openapi_url!r}")
    if docs_url is not None and not docs_url.startswith("/"):
        raise ValueError(f"docs_url must start with '/': {docs_url!r}")
    docs = _Docs(openapi, title, openapi_url, docs_url or "/")
    routes: list[BaseRoute] = [
        Route(openapi_url, docs.document, methods=["GET"], include_in_schema=False)]
    if docs_url is not None:
        base = "" if docs.docs_url == "/" else docs.docs_url
        routes += [
            Route(docs.docs_url, docs.page, methods=["GET"], include_in_schema=False),
            Route(base + "/assets/{version}/{name}", docs.asset, methods=["GET"],
                  include_in_schema=False),
        ]
    return Router(routes=routes, default=fallback)
