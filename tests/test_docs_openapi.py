"""The examples of docs/openapi.md run, and say what the page says they do."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate

from qakeapi.testing import TestClient

from . import _docs as docs

PAGE = "docs/openapi.md"


def run_block(marker: str, ns: dict[str, Any] | None = None) -> dict[str, Any]:
    # dont_inherit: run as a reader would, without this module's `from __future__` import
    return docs.run_block(PAGE, marker, ns, module="docs_openapi", dont_inherit=True)


def test_the_example_app_and_its_document() -> None:
    ns = run_block("class PetIn")
    run_block("document = client.get", ns)  # its asserts check the document
    app = ns["app"]
    document = app.openapi()
    validate(document)
    photo = document["paths"]["/pets/{pet_id}/photo"]["post"]["requestBody"]["content"]
    assert photo["multipart/form-data"]["schema"]["properties"]["photo"] == {
        "type": "string", "format": "binary"}
    assert document["components"]["schemas"]["Size"]["enum"] == ["small", "large"]
    with TestClient(app) as client:
        read = client.get("/pets/4")
        assert read.json() == {"id": 4, "name": "Rex"}, "filtered by response_model"
        assert client.post("/pets", json={"name": ""}).status_code == 422
        created = client.post("/pets", json={"name": "Bo"})
        assert (created.status_code, created.json()) == (201, {"id": 1, "name": "Bo"})
        upload = client.post("/pets/4/photo", files={"photo": ("a.png", b"1234")})
        assert upload.json() == {"pet": 4, "bytes": 4}
        assert client.get("/internal/health").json() == {"ok": True}


def test_settings() -> None:
    app = run_block('openapi_url="/api/openapi.json"')["app"]
    with TestClient(app) as client:
        assert client.get("/openapi.json").status_code == 404
        assert client.get("/api/openapi.json").json()["info"]["title"] == "Pet shop"
        assert 'data-openapi-url="/api/openapi.json"' in client.get("/api/docs").text


def test_editing_the_served_document() -> None:
    app = run_block("securitySchemes")["app"]
    with TestClient(app) as client:
        served = client.get("/openapi.json").json()
    assert served["security"] == [{"token": []}]
    validate(served)


def test_a_router_on_its_own() -> None:
    ns = run_block("build_openapi(router")
    validate(ns["document"])
    assert ns["document"]["paths"]["/stock/{sku}"]["get"]["tags"] == ["stock"]
    assert '"https://stock.example.com"' in ns["text"]


def test_validating_in_your_tests() -> None:
    run_block("validate(app.openapi())")
