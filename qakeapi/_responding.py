"""A handler's return value as a response, shaped by its route's options.

:class:`ResponseShaper` applies ``status_code=`` (a 204, 304 or 1xx has no body) and
``response_model=`` (the output validated and filtered through one Pydantic ``TypeAdapter``
built when the route is added). The endpoint then merges the ``response: Response``
parameter the handler may have set headers, cookies and a status on.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response as _StarletteResponse

from .responses import JSONResponse, PlainTextResponse, Response

__all__ = ["ResponseShaper", "ResponseValidationError", "to_response"]

_NO_BODY = frozenset({204, 304})


class ResponseValidationError(Exception):
    """A handler's output that does not match its ``response_model``: a server error (500),
    as FastAPI's of the same name. ``errors`` are Pydantic's."""

    def __init__(self, handler: str, model: Any, errors: list[Any], detail: str) -> None:
        super().__init__(
            f"the response of {handler!r} does not match its response_model "
            f"{getattr(model, '__name__', model)!r}: {detail}")
        self.errors = errors


def _dump_model(result: Any) -> Any:
    dump = getattr(result, "model_dump", None)
    if dump is None:
        return result
    # A Pydantic model returned without response_model: its JSON form.
    return dump(mode="json")


class ResponseShaper:
    """How one route turns results into responses."""

    __slots__ = ("adapter", "handler", "model", "status_code")

    def __init__(self, handler: str, status_code: int | None, response_model: Any) -> None:
        self.handler = handler
        self.status_code = status_code
        self.model = response_model
        self.adapter: Any = None
        if response_model is not None:
            from pydantic import TypeAdapter  # only routes with a response_model need it

            try:
                self.adapter = TypeAdapter(response_model)
            except Exception as exc:
                raise TypeError(
                    f"handler {handler!r}: response_model {response_model!r} is not a type "
                    f"Pydantic can validate: {exc}") from exc

    @property
    def is_plain(self) -> bool:
        """No option changes what the handler returns."""
        return self.status_code is None and self.adapter is None

    def validate(self, body: Any) -> Any:
        """``body`` validated against ``response_model``, as JSON data (unknown fields
        dropped); raises :class:`ResponseValidationError`."""
        from pydantic import ValidationError

        try:
            value = self.adapter.validate_python(body, from_attributes=True)
        except ValidationError as exc:
            raise ResponseValidationError(self.handler, self.model, exc.errors(),
                                          str(exc)) from None
        return self.adapter.dump_python(value, mode="json")

    def respond(self, result: Any) -> _StarletteResponse:
        """``result`` as a response: ``status_code=`` for data (a tuple's status wins; a
        204, 304 or 1xx has no body), data validated through ``response_model``; a
        returned ``Response`` is sent as it is."""
        if isinstance(result, _StarletteResponse):
            return result
        status = self.status_code or 200
        body = result
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], int):
            body, status = result
            if isinstance(body, _StarletteResponse):
                body.status_code = status
                return body
            if isinstance(body, str):
                return PlainTextResponse(body, status_code=status)
        if status in _NO_BODY or status < 200:
            return Response(status_code=status)
        data = self.validate(body) if self.adapter is not None else _dump_model(body)
        return JSONResponse(data, status_code=status)


_PLAIN = ResponseShaper("", None, None)


def to_response(result: Any) -> _StarletteResponse:
    """A handler's return value as a response: JSON for data, ``(body, status)`` tuples."""
    return _PLAIN.respond(result)
