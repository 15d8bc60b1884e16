"""Form fields and uploaded files, parsed by Starlette (python-multipart) and validated by
Pydantic; a 422 naming the field for each bad one."""

from __future__ import annotations

from typing import Any

import pytest

from qakeapi import File, Form, QakeAPI, UploadFile
from qakeapi.testing import TestClient


def make_app() -> QakeAPI:
    app = QakeAPI()

    @app.post("/login")
    async def login(username: str = Form(min_length=2), age: int = Form(0, ge=0),
                    tags: list[str] = Form([])) -> dict[str, Any]:
        return {"username": username, "age": age, "tags": tags}

    @app.post("/upload")
    async def upload(doc: UploadFile, raw: bytes = File(), note: str = Form(""),
                     extra: list[UploadFile] = File([])) -> dict[str, Any]:
        return {"doc": doc.filename, "content": (await doc.read()).decode(),
                "raw": raw.decode(), "note": note, "extra": [f.filename for f in extra]}

    @app.post("/maybe")
    async def maybe(doc: UploadFile | None = None, blobs: list[bytes] = File([])
                    ) -> dict[str, Any]:
        return {"doc": doc.filename if doc else None, "blobs": [b.decode() for b in blobs]}

    return app


@pytest.fixture
def client() -> Any:
    with TestClient(make_app()) as c:
        yield c


def test_urlencoded_and_multipart_forms(client: TestClient) -> None:
    assert client.post("/login", data={"username": "ada", "age": "36",
                                       "tags": ["x", "y"]}).json() == {
        "username": "ada", "age": 36, "tags": ["x", "y"]}
    files = [("doc", ("a.txt", b"alpha")), ("raw", ("b.bin", b"beta")),
             ("extra", ("c", b"1")), ("extra", ("d", b"2"))]
    assert client.post("/upload", files=files, data={"note": "n"}).json() == {
        "doc": "a.txt", "content": "alpha", "raw": "beta", "note": "n", "extra": ["c", "d"]}
    assert client.post("/maybe", data={"x": "1"}).json() == {"doc": None, "blobs": []}
    assert client.post("/maybe", files=[("blobs", ("a", b"A")), ("blobs", ("b", b"B"))]
                       ).json() == {"doc": None, "blobs": ["A", "B"]}


@pytest.mark.parametrize(("data", "files", "errors"), [
    ({"age": "x"}, None, [(["body", "username"], "missing"), (["body", "age"], "int_parsing")]),
    ({"username": "a", "age": "-1"}, None, [(["body", "username"], "string_too_short"),
                                           (["body", "age"], "greater_than_equal")]),
])
def test_each_invalid_form_field_is_a_422(client: TestClient, data: Any, files: Any,
                                          errors: list[tuple[list[Any], str]]) -> None:
    response = client.post("/login", data=data, files=files)
    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == errors


def test_missing_files_and_text_in_place_of_a_file_are_422(client: TestClient) -> None:
    missing = client.post("/upload", data={"note": "n"})
    assert missing.status_code == 422
    assert [e["loc"] for e in missing.json()["detail"]] == [["body", "doc"], ["body", "raw"]]
    text = client.post("/upload", data={"doc": "not a file"}, files=[("raw", ("b", b"B"))])
    assert text.status_code == 422
    [error] = text.json()["detail"]
    assert error["loc"] == ["body", "doc"] and "UploadFile" in error["msg"]


def test_a_broken_multipart_body_is_a_400(client: TestClient) -> None:
    response = client.post("/upload", content=b"--xyz\r\nnot a part",
                           headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert response.status_code == 400


def test_uploaded_files_are_closed_after_the_response() -> None:
    app = QakeAPI()
    kept: list[UploadFile] = []

    @app.post("/keep")
    async def keep(doc: UploadFile) -> dict[str, bool]:
        kept.append(doc)
        return {"closed": doc.file.closed}

    assert app.routes[0].endpoint.plan.has_teardown
    with TestClient(app) as client:
        assert client.post("/keep", files=[("doc", ("a", b"A"))]).json() == {"closed": False}
    assert kept[0].file.closed
