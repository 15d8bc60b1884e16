"""``dependencies=[Depends(check)]`` on a route, a router, ``include_router`` or the app.

Such dependencies run for their effect (a check that raises ``HTTPException``, a ``yield``
that opens and closes something) before the handler, with their own parameters planned like
any dependency's (so they show in OpenAPI); their values are not passed to the handler.
They become extra keyword-only parameters of a wrapper the route plans instead of the handler.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from ._inject import InjectMarker

__all__ = ["as_markers", "with_dependencies"]

_PARAMETER = "_qakeapi_route_dependency_{}"


def as_markers(dependencies: Iterable[Any]) -> tuple[InjectMarker, ...]:
    """``dependencies`` as Depends markers: ``Depends(fn)``/``Inject(key)`` or a bare callable.
    Raises TypeError for anything else."""
    if isinstance(dependencies, (str, bytes)) or not isinstance(dependencies, Iterable):
        raise TypeError(f"dependencies must be a list of Depends(...), got {dependencies!r}")
    markers = []
    for dependency in dependencies:
        if isinstance(dependency, InjectMarker):
            if dependency.dependency is None:
                raise TypeError("Depends() in dependencies=[...] needs the dependency: "
                                "Depends(check), there is no annotation to read it from")
            markers.append(dependency)
        elif callable(dependency):
            markers.append(InjectMarker(dependency))
        else:
            raise TypeError(f"dependencies=[...] takes Depends(fn) or functions, got "
                            f"{dependency!r}")
    return tuple(markers)


def with_dependencies(handler: Callable[..., Any],
                      dependencies: tuple[InjectMarker, ...]) -> Callable[..., Any]:
    """A wrapper of ``handler`` whose signature adds one keyword-only parameter per
    dependency (defaulting to its marker) and that drops them before calling ``handler``."""
    signature = inspect.signature(handler)
    parameters = list(signature.parameters.values())
    names = [_PARAMETER.format(i) for i in range(len(dependencies))]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=marker)
             for name, marker in zip(names, dependencies, strict=True)]
    at = next((i for i, p in enumerate(parameters) if p.kind is p.VAR_KEYWORD),
              len(parameters))
    parameters[at:at] = extra

    if inspect.iscoroutinefunction(handler):
        @functools.wraps(handler)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            for name in names:
                kwargs.pop(name, None)
            return await handler(*args, **kwargs)
    else:
        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for name in names:
                kwargs.pop(name, None)
            return handler(*args, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = dict(getattr(handler, "__annotations__", {}))
    return wrapper
