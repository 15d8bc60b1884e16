"""/openapi.json and the /docs page: Swagger UI's files served by the app itself (no CDN),
with their content types and caching headers; a clear page when the ``docs`` extra is
missing; the URLs configurable and each one optional."""

from __future__ import annotations

import logging
import re
import sys

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from qakeapi import QakeAPI
from qakeapi.testing import TestClient


def make_app(**kwargs: object) -> QakeAPI:
    app = QakeAPI(title="Pets <&> Co", version="3.2.1", **kwargs)  # type: ignore[arg-type]

    @app.get("/pets/{pet_id}")
    async def read_pet(pet_id: int) -> dict[str, int]:
        """Read one pet."""
        return {"id": pet_id}

    return app


def asset_urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


def test_page_loads_only_assets_the_app_serves() -> None:
    with TestClient(make_app()) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
        assert "<title>Pets &lt;&amp;&gt; Co - docs</title>" in page.text
        assert 'data-openapi-url="/openapi.json"' in page.text
        urls = asset_urls(page.text)
        assert len(urls) == 4
        assert all(url.startswith("/docs/assets/") for url in urls), urls  # no CDN
        assert "<script>" not in page.text, "no inline script (CSP script-src 'self')"
        types = {}
        for url in urls:
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
            types[url.rsplit("/", 1)[1]] = asset.headers["content-type"]
        assert types["swagger-ui-bundle.js"].split(";")[0] in ("text/javascript",
                                                               "application/javascript")
        assert types["qakeapi-docs.js"].split(";")[0] == "text/javascript"
        assert types["swagger-ui.css"].startswith("text/css")
        assert types["favicon-32x32.png"] == "image/png"
        bundle = client.get(urls[2])
        assert "SwaggerUIBundle" in bundle.text
        again = client.get(urls[2], headers={"if-none-match": bundle.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        document = client.get("/openapi.json")
        assert document.status_code == 200
        assert document.json()["info"] == {"title": "Pets <&> Co", "version": "3.2.1"}


def test_only_the_listed_files_of_the_current_version_are_served() -> None:
    with TestClient(make_app()) as client:
        [bundle] = [u for u in asset_urls(client.get("/docs").text) if "bundle" in u]
        base, _, _name = bundle.rpartition("/")
        for name in ("swagger-editor-bundle.js", "..%2F__init__.py", "LICENSE", "index.css"):
            assert client.get(f"{base}/{name}").status_code == 404, name
        version = base.rpartition("/")[2]
        stale = bundle.replace(f"/{version}/", "/0.0.1/")
        assert client.get(stale).status_code == 404
        assert client.post(bundle).status_code == 405


def test_missing_extra_gives_an_install_hint_and_the_document_still_works(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "swagger_ui", None)  # as if not installed
    caplog.set_level(logging.WARNING, logger="qakeapi.openapi")
    with TestClient(make_app()) as client:
        page = client.get("/docs")
        assert page.status_code == 501
        assert 'pip install "qakeapi[docs]"' in page.text.replace("&quot;", '"')
        assert client.get("/docs").status_code == 501
        assert client.get("/openapi.json").json()["paths"]["/pets/{pet_id}"]
        assert client.get("/docs/assets/1/swagger-ui.css").status_code == 404
    warnings = [r for r in caplog.records if "qakeapi[docs]" in r.getMessage()]
    assert len(warnings) == 1, "logged once, not per request"


def test_urls_are_configurable_and_optional() -> None:
    with TestClient(make_app(docs_url=None)) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 200
    with TestClient(make_app(openapi_url=None)) as client:
        assert client.get("/openapi.json").status_code == 404
        assert client.get("/docs").status_code == 404, "the page needs the document"
    with TestClient(make_app(openapi_url="/api/schema.json", docs_url="/api/ui")) as client:
        assert client.get("/openapi.json").status_code == 404
        page = client.get("/api/ui")
        assert 'data-openapi-url="/api/schema.json"' in page.text
        assert all(u.startswith("/api/ui/assets/") for u in asset_urls(page.text))
        assert client.get("/api/schema.json").json()["openapi"] == "3.1.0"
    with pytest.raises(ValueError, match="must start with '/'"):
        make_app(docs_url="docs")
    with pytest.raises(ValueError, match="must start with '/'"):
        make_app(openapi_url="openapi.json")


def test_mounted_app_links_under_its_prefix() -> None:
    outer = Starlette(routes=[Mount("/v1", app=make_app())])
    with TestClient(outer) as client:
        page = client.get("/v1/docs")
        assert page.status_code == 200
        assert 'data-openapi-url="/v1/openapi.json"' in page.text
        urls = asset_urls(page.text)
        assert all(u.startswith("/v1/docs/assets/") for u in urls), urls
        assert all(client.get(u).status_code == 200 for u in urls)
        assert client.get("/v1/openapi.json").status_code == 200


def test_the_pages_are_not_routes_of_the_app_and_never_hide_one() -> None:
    app = make_app()
    assert [route.path for route in app.routes] == ["/pets/{pet_id}"]
    assert list(app.openapi()["paths"]) == ["/pets/{pet_id}"]

    @app.get("/docs")
    async def own_docs() -> dict[str, bool]:
        return {"own": True}

    with TestClient(app) as client:
        assert client.get("/docs").json() == {"own": True}
        assert client.get("/openapi.json").json()["paths"]["/docs"]
        assert client.get("/nothing-here").status_code == 404
        assert client.get("/docs/assets/x/swagger-ui.css").status_code == 404
