"""``Inject(dep)``: the marker a handler or factory parameter carries, and its error.

What a marker resolves through is a :class:`Resolver` (the app's
:class:`~qakeapi.dependencies.Container`), so planning parameters never needs the container.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .exceptions import QakeAPIError

if TYPE_CHECKING:
    from .requests import Request

__all__ = ["DependencyError", "Inject", "InjectMarker", "Resolver"]


class DependencyError(QakeAPIError, LookupError):
    """A dependency that can't be provided."""


class InjectMarker:
    """The default value ``Inject(dep)`` puts on a parameter."""

    __slots__ = ("dependency",)

    def __init__(self, dependency: Any) -> None:
        self.dependency = dependency

    def __repr__(self) -> str:
        return f"Inject({getattr(self.dependency, '__qualname__', self.dependency)!r})"


def Inject(dependency: Any) -> Any:
    """Mark a handler parameter to be filled from the app's container."""
    if dependency is None:
        raise TypeError("Inject() needs a class, factory or registered key")
    return InjectMarker(dependency)


class Resolver(Protocol):
    """Gives the value for an ``Inject(key)`` parameter."""

    async def resolve(self, key: Any, request: Request | None = None) -> Any: ...
