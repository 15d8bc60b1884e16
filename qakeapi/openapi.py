"""OpenAPI 3.1 documents from an app's routes: ``build_openapi(app.routes, title=..., ...)``.

Each route whose endpoint is a handler (``@app.get(...)``, included routers) becomes one
operation per method. Its parameters come from the handler's plan, the same one that fills
them per request (so the document describes what the app reads); their JSON
Schemas, and those of bodies and response models, are Pydantic's (see
:mod:`qakeapi._openapi_schema`). Mounted apps (the task dashboard, static files), WebSocket
routes and routes with ``include_in_schema=False`` are left out. ``app.openapi()`` returns
the app's document, served at ``/openapi.json`` with a Swagger UI page at ``/docs``.
"""

from __future__ import annotations

import http
import inspect
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.routing import Route

from ._openapi_schema import (
    HTTPValidationError,
    SchemaCollector,
    json_default,
)
from ._params_fields import strip_optional
from .constants import OPENAPI_VERSION
from .routing import HandlerEndpoint, RouteOptions, Router

if TYPE_CHECKING:
    from ._params import ParamSpec

__all__ = ["build_openapi"]

METHOD_ORDER = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE")
PARAMETER_SOURCES = ("path", "query", "header", "cookie")
BODY_SOURCES = ("body", "form", "file")
_CONVERTOR = re.compile(r"{([^}:]+)(?::[^}]*)?}")
_CONVERTOR_SCHEMAS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "path": {"type": "string"},
    "int": {"type": "integer", "minimum": 0},
    "float": {"type": "number", "minimum": 0},
    "uuid": {"type": "string", "format": "uuid"},
}
_BINARY = {"type": "string", "format": "binary"}
_NO_BODY_STATUSES = frozenset({204, 205, 304})
_RESPONSE_KEY = re.compile(r"[1-5](?:\d\d|XX)|default")


def build_openapi(
    routes: Iterable[Any] | Router,
    *,
    title: str,
    version: str,
    description: str | None = None,
    servers: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``: ``app.routes`` (Starlette routes), or a
    :class:`~qakeapi.routing.Router` (its routes as an app including it would serve them).

    Raises TypeError for a parameter or model Pydantic can't describe, and ValueError for
    two operations given the same ``operation_id``."""
    collector = SchemaCollector()
    paths: dict[str, dict[str, Any]] = {}
    operations: list[tuple[dict[str, Any], RouteOptions, Route, str]] = []
    served: Iterable[Any] = routes.routes if isinstance(routes, Router) else routes
    # A conditional route is documented only where no route without a condition serves
    # its path and method (the one every client can reach).
    for route in sorted(served, key=lambda r: getattr(r, "condition", None) is not None):
        if not isinstance(route, Route) or not isinstance(route.endpoint, HandlerEndpoint):
            continue  # mounts (the dashboard, static files) and WebSocket routes
        endpoint = route.endpoint
        options = endpoint.options
        if not options.include_in_schema or not route.include_in_schema:
            continue
        item = paths.setdefault(_CONVERTOR.sub(r"{\1}", route.path), {})
        for method in _methods(route):
            if method.lower() in item:
                continue  # Starlette serves the first route of a path and method
            operation = _Operation(collector, route, endpoint, options, method).build()
            item[method.lower()] = operation
            operations.append((operation, options, route, method))
    _operation_ids(operations)
    components = collector.finish()
    document: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": {"title": title,
                                                                      "version": version}}
    if description:
        document["info"]["description"] = description
    if servers:
        document["servers"] = [dict(server) for server in servers]
    document["paths"] = {path: item for path, item in paths.items() if item}
    if components:
        document["components"] = {"schemas": components}
    return document


def _methods(route: Route) -> list[str]:
    methods = set(route.methods or ("GET",))
    if "GET" in methods:
        methods.discard("HEAD")  # Starlette adds it to every GET route
    return sorted(methods, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else 99, m))


def _operation_ids(operations: list[tuple[dict[str, Any], RouteOptions, Route, str]]) -> None:
    """Set every ``operationId``: the given ones first (two alike are an error), then
    generated ones, FastAPI's way (name, path, method), made unique with a suffix."""
    seen: dict[str, str] = {}
    for operation, options, route, method in operations:
        given = options.operation_id
        if given is not None:
            where = f"{method} {route.path}"
            if given in seen:
                raise ValueError(f"operation_id {given!r} of {where} is also the "
                                 f"operation_id of {seen[given]}")
            seen[given] = where
            operation["operationId"] = given
    for operation, options, route, method in operations:
        if options.operation_id is None:
            base = re.sub(r"\W", "_", f"{route.name}{route.path}") + f"_{method.lower()}"
            candidate, n = base, 1
            while candidate in seen:
                n += 1
                candidate = f"{base}_{n}"
            seen[candidate] = f"{method} {route.path}"
            operation["operationId"] = candidate


class _Operation:
    """One operation object; its schemas are placeholders until the collector finishes."""

    def __init__(self, collector: SchemaCollector, route: Route, endpoint: HandlerEndpoint,
                 options: RouteOptions, method: str) -> None:
        self.collector = collector
        self.route = route
        self.endpoint = endpoint
        self.options = options
        self.method = method
        self.where = f"{method} {route.path}"
        self.namespace: dict[str, Any] | None = getattr(endpoint.handler, "__globals__", None)

    def build(self) -> dict[str, Any]:
        operation: dict[str, Any] = {}
        if self.options.tags:
            operation["tags"] = list(self.options.tags)
        operation.update(self._texts())
        http_params = [p for p in self.endpoint.plan.http_params()
                       if getattr(p.field_info, "include_in_schema", True) is not False]
        parameters = self._parameters(http_params)
        if parameters:
            operation["parameters"] = parameters
        body = self._request_body([p for p in http_params if p.source in BODY_SOURCES])
        if body is not None:
            operation["requestBody"] = body
        operation["responses"] = self._responses(validated=bool(http_params))
        if self.options.deprecated:
            operation["deprecated"] = True
        return operation

    def _texts(self) -> dict[str, str]:
        doc = inspect.getdoc(self.endpoint.handler) or ""
        summary, description = self.options.summary, self.options.description
        if summary is None:
            first, _, rest = doc.partition("\n")
            summary = first.strip() or _humanize(self.route.name)
            if description is None:
                description = rest.strip() or None
        elif description is None:
            description = doc or None
        texts = {"summary": summary}
        if description:
            texts["description"] = description
        return texts

    # -- parameters ------------------------------------------------------------------
    def _parameters(self, http_params: list[ParamSpec]) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = []
        documented: set[tuple[str, str]] = set()
        for p in http_params:
            if p.source not in PARAMETER_SOURCES or (p.source, p.alias) in documented:
                continue
            documented.add((p.source, p.alias))
            parameter: dict[str, Any] = {"name": p.alias, "in": p.source,
                                         "required": p.source == "path" or bool(p.required)}
            info = p.field_info
            if info is not None and info.description:
                parameter["description"] = info.description
            if info is not None and info.deprecated:
                parameter["deprecated"] = True
            parameter["schema"] = self._schema_of(p)
            parameters.append(parameter)
        # OpenAPI requires every templated path parameter to be described, also those the
        # handler does not take.
        for name, convertor in _path_convertors(self.route.path):
            if ("path", name) not in documented:
                parameters.insert(0, {"name": name, "in": "path", "required": True,
                                      "schema": dict(_CONVERTOR_SCHEMAS.get(convertor, {}))})
        return parameters

    def _schema_of(self, p: ParamSpec) -> dict[str, Any]:
        info = p.field_info
        extra: dict[str, Any] = {}
        if info is not None:
            if info.title:
                extra["title"] = info.title
            if info.description:
                extra["description"] = info.description
            if info.examples:
                extra["examples"] = list(info.examples)
            if info.deprecated:
                extra["deprecated"] = True
            if isinstance(info.json_schema_extra, dict):
                extra.update(info.json_schema_extra)
        if not p.required and p.default is not None:
            shown, value = json_default(p.default)
            if shown:
                extra["default"] = value
        if p.source == "file" or _is_file_type(p.annotation):
            schema = _file_schema(p.annotation)
            schema.update(extra)
            return schema
        metadata = tuple(info.metadata) if info is not None else ()
        return self.collector.schema(p.annotation, "validation", metadata=metadata, extra=extra,
                                     what=f"{self.where}: parameter {p.name!r}",
                                     namespace=self.namespace)

    # -- request body ----------------------------------------------------------------
    def _request_body(self, body_params: list[ParamSpec]) -> dict[str, Any] | None:
        if not body_params:
            return None
        sources = {p.source for p in body_params}
        if "file" in sources:
            media_type = "multipart/form-data"
        elif "form" in sources:
            media_type = "application/x-www-form-urlencoded"
        else:
            media_type = "application/json"
        # As the plan reads it: one body parameter is the whole JSON body; several, one with
        # embed=True, or form fields are the members of an object.
        single = body_params[0] if len(body_params) == 1 and not body_params[0].embed else None
        if single is not None and single.source == "body":
            schema = self._schema_of(single)
            required = bool(single.required)
        else:
            properties: dict[str, Any] = {}
            required_names: list[str] = []
            for p in body_params:
                properties[p.alias] = self._schema_of(p)
                if p.required:
                    required_names.append(p.alias)
            schema = {"type": "object", "properties": properties}
            if required_names:
                schema["required"] = required_names
            required = bool(required_names)
        return {"content": {media_type: {"schema": schema}}, "required": required}

    # -- responses -------------------------------------------------------------------
    def _responses(self, *, validated: bool) -> dict[str, Any]:
        primary = str(self.options.status_code or 200)
        responses: dict[str, Any] = {primary: self._response(primary,
                                                             self.options.response_model)}
        for code, spec in (self.options.responses or {}).items():
            key = str(code).upper() if str(code).lower() != "default" else "default"
            if not _RESPONSE_KEY.fullmatch(key):
                raise ValueError(f"{self.where}: responses key {code!r} is not an HTTP status "
                                 f"(100-599), a range such as '4XX', or 'default'")
            if key == primary and (isinstance(spec, str) or (
                    isinstance(spec, Mapping) and "model" not in spec)):
                # More about the success response, whose content response_model gives.
                responses[key].update({"description": spec} if isinstance(spec, str)
                                      else spec)
                continue
            responses[key] = self._extra_response(key, spec)
        if validated and "422" not in responses:
            responses["422"] = {
                "description": "Validation Error",
                "content": {"application/json": {"schema": self.collector.schema(
                    HTTPValidationError, "serialization", what="HTTPValidationError")}},
            }
        return responses

    def _response(self, key: str, model: Any, description: str | None = None,
                  what: str = "response_model") -> dict[str, Any]:
        response: dict[str, Any] = {"description": description or _phrase(key)}
        if key.isdigit() and (int(key) in _NO_BODY_STATUSES or int(key) < 200):
            return response
        schema: dict[str, Any] = {}
        if model is not None:
            schema = self.collector.schema(model, "serialization",
                                           what=f"{self.where}: {what}",
                                           namespace=self.namespace)
        response["content"] = {"application/json": {"schema": schema}}
        return response

    def _extra_response(self, key: str, spec: Any) -> dict[str, Any]:
        """``responses={404: Model}``, ``{404: "Not found"}`` or FastAPI's ``{404: {"model":
        Model, "description": ...}}`` (other keys are OpenAPI's response object's own)."""
        what = f"responses[{key}]"
        if isinstance(spec, str):
            return self._response(key, None, spec)
        if isinstance(spec, Mapping):
            extra = dict(spec)
            model = extra.pop("model", None)
            response = self._response(key, model, extra.pop("description", None), what)
            if model is None and "content" in extra:
                response.pop("content", None)
            response.update(extra)
            return response
        return self._response(key, spec, what=what)


def _path_convertors(path: str) -> list[tuple[str, str]]:
    return [(m.group(1), (m.group(0)[1:-1].partition(":")[2] or "str"))
            for m in _CONVERTOR.finditer(path)]


def _humanize(name: str) -> str:
    return name.replace("_", " ").strip().title() or name


def _phrase(key: str) -> str:
    if key == "default":
        return "Default Response"
    try:
        return http.HTTPStatus(int(key)).phrase
    except ValueError:
        return f"{key} Response"


def _is_file_type(annotation: Any) -> bool:
    inner = strip_optional(annotation)[0]
    args = getattr(inner, "__args__", ())
    if getattr(inner, "__origin__", None) in (list, tuple, set, frozenset) and args:
        inner = strip_optional(args[0])[0]
    return isinstance(inner, type) and issubclass(inner, UploadFile)


def _file_schema(annotation: Any) -> dict[str, Any]:
    inner = strip_optional(annotation)[0]
    if getattr(inner, "__origin__", None) in (list, tuple, set, frozenset):
        return {"type": "array", "items": dict(_BINARY)}
    return dict(_BINARY)
