"""ParamSpec and the per-parameter helpers: which annotations are query values, JSON-safe
error entries, and the sources of special parameters."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.websockets import WebSocket

from qakeapi import Query, UploadFile
from qakeapi._params import ParamSpec, plan_callable
from qakeapi._params_fields import (
    errors_from,
    is_scalar_like,
    is_sequence,
    mentions_upload,
    strip_optional,
)
from qakeapi.requests import Request
from qakeapi.responses import Response


class Color(enum.Enum):
    RED = "red"


class Model(BaseModel):
    x: int


@pytest.mark.parametrize(("annotation", "scalar"), [
    (int, True), (str | None, True), (uuid.UUID, True), (datetime.date, True),
    (Color, True), (Literal["a", "b"], True), (list[int], True), (list[int] | None, True),
    (tuple[int, ...], True), (Annotated[int, "meta"], True), (Any, True),
    (dict[str, Any], False), (list[dict[str, Any]], False), (Model, False), (list, False),
])
def test_which_annotations_the_query_string_carries(annotation: Any, scalar: bool) -> None:
    assert is_scalar_like(annotation) is scalar


def test_sequences_optionals_and_uploads() -> None:
    assert is_sequence(list[int] | None) and is_sequence(set[str]) and not is_sequence(str)
    assert strip_optional(int | None) == (int, True)
    assert strip_optional(int | str) == (int | str, False)
    assert mentions_upload(list[UploadFile] | None) and not mentions_upload(list[bytes])


def test_error_entries_are_json_safe() -> None:
    def refuse(value: Any) -> Any:
        raise ValueError("no")

    from pydantic import AfterValidator

    adapter = TypeAdapter(Annotated[bytes, AfterValidator(refuse)])
    with pytest.raises(ValidationError) as caught:
        adapter.validate_python(b"\xff")
    [entry] = errors_from(caught.value, ["body", "blob"])
    assert entry["loc"] == ["body", "blob"] and entry["type"] == "value_error"
    assert entry["ctx"] == {"error": "no"}  # the exception, as text
    assert isinstance(entry["input"], str)


def test_param_spec_is_frozen_with_slots() -> None:
    spec = ParamSpec("q", "query", "q", int, True, None, None)
    assert not hasattr(spec, "__dict__") and spec.embed is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


def test_special_parameters_have_their_sources() -> None:
    async def handler(request: Request, ws: WebSocket, out: Response, websocket: Any,
                      q: Annotated[int, Query()] = 0) -> None:
        return None

    plan = plan_callable(handler, path_params=())
    assert [(p.name, p.source) for p in plan.params] == [
        ("request", "request"), ("ws", "websocket"), ("out", "response"),
        ("websocket", "websocket"), ("q", "query")]
    assert plan.response_param == "out" and plan.request_only is None
    assert [p.name for p in plan.http_params()] == ["q"]


def test_markers_refuse_options_they_do_not_take() -> None:
    from qakeapi.params import File, Query

    with pytest.raises(TypeError, match=r"Query\(\) got unexpected keyword argument\(s\): bogus"):
        Query(0, bogus=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"File\(\) got unexpected keyword argument\(s\): ge"):
        File(ge=1)  # type: ignore[call-arg]
    assert Query(0, include_in_schema=False).include_in_schema is False
