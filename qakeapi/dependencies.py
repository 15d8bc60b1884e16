"""Dependency injection: ``tasks: QueuedTasks = Inject(QueuedTasks)``.

The app's :class:`Container` resolves a key to a registered instance, a registered factory
(called per resolution, or once when ``singleton=True``), or a class built once per container
when its constructor needs no arguments. Factories may themselves take ``request`` or
``Inject(...)`` parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._inject import DependencyError, Inject, InjectMarker
from ._params import plan_callable

if TYPE_CHECKING:
    from .requests import Request

__all__ = ["Container", "DependencyError", "Inject", "InjectMarker"]


def _needs_no_arguments(cls: type) -> bool:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params
    )


class _Factory:
    __slots__ = ("fn", "plan", "singleton")

    def __init__(self, fn: Callable[..., Any], singleton: bool) -> None:
        self.fn = fn
        self.singleton = singleton
        self.plan = plan_callable(fn, path_params=(), allow_http_params=False)


def _key_name(key: Any) -> str:
    return getattr(key, "__qualname__", None) or repr(key)


class Container:
    """Providers by key. One per app."""

    def __init__(self) -> None:
        self._instances: dict[Any, Any] = {}
        self._factories: dict[Any, _Factory] = {}

    def register(self, key: Any, value: Any) -> None:
        """``Inject(key)`` gives ``value``."""
        self._instances[key] = value
        self._factories.pop(key, None)

    def register_factory(
        self, key: Any, factory: Callable[..., Any], *, singleton: bool = False
    ) -> None:
        """``Inject(key)`` gives ``factory(...)`` (sync or async), once if ``singleton``."""
        self._factories[key] = _Factory(factory, singleton)
        self._instances.pop(key, None)

    def __contains__(self, key: Any) -> bool:
        return key in self._instances or key in self._factories

    async def resolve(self, key: Any, request: Request | None = None) -> Any:
        try:
            return self._instances[key]
        except (KeyError, TypeError):
            pass
        factory = self._factories.get(key)
        if factory is None:
            if isinstance(key, type):
                if not _needs_no_arguments(key):
                    raise DependencyError(
                        f"can't provide {_key_name(key)}: its constructor needs arguments; "
                        f"register it with app.container.register(...)"
                    )
                factory = _Factory(key, singleton=True)
            elif callable(key):
                factory = _Factory(key, singleton=False)
            else:
                raise DependencyError(f"nothing is registered for {key!r}")
            self._factories[key] = factory
        value = await self._call(factory, request)
        if factory.singleton:
            self._instances[key] = value
        return value

    async def _call(self, factory: _Factory, request: Request | None) -> Any:
        kwargs = await factory.plan.resolve_dependencies(request, self)
        fn = factory.fn
        if inspect.iscoroutinefunction(fn):
            return await fn(**kwargs)
        result = fn(**kwargs)
        if inspect.isawaitable(result):
            return await result
        return result
