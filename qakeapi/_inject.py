"""``Inject(dep)`` / ``Depends(dep)``: the marker a handler or factory parameter carries, and
its error.

What a marker resolves through is a :class:`Resolver` (the app's
:class:`~qakeapi.dependencies.Container`), so planning parameters never needs the container.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .exceptions import QakeAPIError

if TYPE_CHECKING:
    from .requests import Request

__all__ = ["DependencyError", "Depends", "Inject", "InjectMarker", "Resolver"]


class DependencyError(QakeAPIError, LookupError):
    """A dependency that can't be provided."""


class InjectMarker:
    """The default value ``Inject(dep)`` puts on a parameter. ``dependency`` is ``None`` for
    ``Depends()``: the parameter's annotation is the dependency."""

    __slots__ = ("dependency", "use_cache")

    def __init__(self, dependency: Any, use_cache: bool = True) -> None:
        self.dependency = dependency
        self.use_cache = use_cache

    def __repr__(self) -> str:
        return f"Inject({getattr(self.dependency, '__qualname__', self.dependency)!r})"


def Inject(dependency: Any, *, use_cache: bool = True) -> Any:
    """Mark a handler parameter to be filled from the app's container (or by calling the
    function ``dependency``); within one request a dependency runs once unless
    ``use_cache=False``."""
    if dependency is None:
        raise TypeError("Inject() needs a class, factory or registered key")
    return InjectMarker(dependency, use_cache)


def Depends(dependency: Any = None, *, use_cache: bool = True) -> Any:
    """FastAPI's name for :func:`Inject`; ``Depends()`` uses the parameter's annotation."""
    return InjectMarker(dependency, use_cache)


class Resolver(Protocol):
    """Gives the value for an ``Inject(key)`` parameter."""

    async def resolve(self, key: Any, request: Request | None = None, *,
                      use_cache: bool = True) -> Any: ...

    def __contains__(self, key: Any) -> bool: ...
