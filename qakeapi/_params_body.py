"""The request body of a handler: its JSON or form parameters, validated by Pydantic with
one TypeAdapter (or model) built when the handler is registered.

A single body parameter is the whole JSON body; several, or one with ``Body(embed=True)``,
are the keys of a JSON object. The body's bytes go straight to Pydantic's JSON parser, which
builds the model without an intermediate ``dict``. Form and file parameters are the fields
of a form Starlette parses (python-multipart).
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, create_model
from starlette.datastructures import UploadFile
from starlette.requests import Request as StarletteRequest

from ._params_fields import (
    INVALID,
    FieldCheck,
    ParamSpec,
    adapter_type,
    build_adapter,
    errors_from,
    missing_error,
)

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

__all__ = ["BodyPlan"]


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json"))


def _json_invalid(raw: bytes, reason: str) -> dict[str, Any]:
    """FastAPI's error for a body that isn't JSON, at the position of the fault when
    Python's parser can tell it (``reason`` is Pydantic's)."""
    loc: list[Any] = ["body"]
    try:
        json.loads(raw)
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            loc, reason = ["body", exc.pos], exc.msg
    except RecursionError:
        pass  # nested deeper than Python parses: Pydantic's reason stands
    return {"type": "json_invalid", "loc": loc, "msg": "JSON decode error", "input": {},
            "ctx": {"error": reason}}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _strict_json(raw: bytes) -> Any:
    """``raw`` parsed by Python, refusing NaN and Infinity (which Pydantic's parser takes)."""
    return json.loads(raw, parse_constant=_refuse_constant)


class BodyPlan:
    """Reads and validates the body parameters of a handler's whole dependency tree."""

    __slots__ = ("adapter", "checks", "form", "model_names", "single", "specs")

    def __init__(self, specs: list[ParamSpec], owner: str) -> None:
        self.specs = specs
        self.form = any(s.source != "body" for s in specs)
        if self.form and any(s.source == "body" for s in specs):
            raise TypeError(f"{owner}: Body(...) parameters can't be mixed with Form/File "
                            f"ones (a request has one body)")
        self.single = len(specs) == 1 and not specs[0].embed and not self.form
        self.checks = [FieldCheck(s) for s in specs] if self.form else []
        self.model_names: list[str] = []
        self.adapter: TypeAdapter[Any] | type[BaseModel] | None = None
        if self.single:
            self.adapter = build_adapter(adapter_type(specs[0]), finite=False)
        elif not self.form:
            fields: dict[str, Any] = {}
            for i, spec in enumerate(specs):
                name = f"p{i}"
                self.model_names.append(name)
                default = ... if spec.required else spec.default
                fields[name] = (adapter_type(spec), Field(default, alias=spec.alias))
            self.adapter = create_model(f"Body_{owner.replace('.', '_')}", **fields)

    async def read(self, request: HTTPConnection, values: dict[str, Any],
                   errors: list[dict[str, Any]],
                   stack: contextlib.AsyncExitStack | None = None) -> None:
        """Fill ``values`` (by parameter name) or add to ``errors``. Uploaded files are
        closed by ``stack`` (after the response)."""
        if not isinstance(request, StarletteRequest):
            raise TypeError("body parameters need an HTTP request")
        if self.form:
            await self._read_form(request, values, errors, stack)
            return
        raw = await request.body()
        if raw and not _is_json(request.headers.get("content-type")):
            errors.append({
                "type": "model_attributes_type", "loc": ["body"], "input": None,
                "msg": f"expected a JSON body (Content-Type: application/json), got "
                       f"Content-Type {request.headers.get('content-type')!r}"})
            return
        data: Any = None
        if b"NaN" in raw or b"Infinity" in raw:
            # Rare (and maybe only inside a string): parsed by Python, which can refuse them.
            try:
                data = _strict_json(raw)
            except (ValueError, RecursionError) as exc:
                errors.append(_json_invalid(raw, str(exc)))
                return
        if self.single:
            spec = self.specs[0]
            if not raw:
                if spec.required:
                    errors.append(missing_error(["body"]))
                else:
                    values[spec.name] = spec.default
                return
            assert isinstance(self.adapter, TypeAdapter)
            try:
                values[spec.name] = (self.adapter.validate_json(raw) if data is None
                                     else self.adapter.validate_python(data))
            except ValidationError as exc:
                errors.extend(self._errors(exc, raw, ["body"]))
            return
        model = self.adapter
        assert model is not None and not isinstance(model, TypeAdapter)
        try:
            if data is not None:
                result = model.model_validate(data)
            else:
                result = model.model_validate_json(raw) if raw else model.model_validate({})
        except ValidationError as exc:
            errors.extend(self._errors(exc, raw, ["body"]))
            return
        for spec, name in zip(self.specs, self.model_names, strict=True):
            values[spec.name] = getattr(result, name)

    def _errors(self, exc: ValidationError, raw: bytes, prefix: list[Any]
                ) -> list[dict[str, Any]]:
        for error in exc.errors(include_url=False):
            if error["type"] == "json_invalid":
                return [_json_invalid(raw, str(error.get("ctx", {}).get("error", "")))]
        return errors_from(exc, prefix)

    async def _read_form(self, request: StarletteRequest, values: dict[str, Any],
                         errors: list[dict[str, Any]],
                         stack: contextlib.AsyncExitStack | None) -> None:
        form = await request.form()
        if stack is not None:
            stack.push_async_callback(form.close)
        for check in self.checks:
            spec = check.spec
            raw: Any = form.getlist(spec.alias) if check.many else form.get(spec.alias)
            if raw is None or raw == [] or raw == "":
                if spec.required:
                    errors.append(missing_error(["body", spec.alias]))
                else:
                    values[spec.name] = check.default()
                continue
            if check.wants_bytes:
                raw = [await _bytes(v) for v in raw] if check.many else await _bytes(raw)
            value = check.check(raw, errors)
            if value is not INVALID:
                values[spec.name] = value


async def _bytes(value: Any) -> Any:
    if isinstance(value, UploadFile):
        return await value.read()
    if isinstance(value, str):
        return value.encode()
    return value
