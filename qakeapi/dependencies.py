"""Dependency injection: ``tasks: QueuedTasks = Inject(QueuedTasks)``.

The app's :class:`Container` resolves a key to a registered instance, a registered factory
(called once per request, or once when ``singleton=True``), or a class built once per
container when its constructor needs no arguments. Factories may themselves take ``request``
or ``Inject(...)`` parameters. A function given to ``Inject``/``Depends`` that is not
registered is called by the handler's plan (see :mod:`qakeapi._params`), with its own
query/header/body/... parameters. :func:`check_dependencies` runs when the app starts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._inject import DependencyError, Depends, Inject, InjectMarker
from ._params import CACHE_SCOPE_KEY, CallablePlan, plan_callable

if TYPE_CHECKING:
    from .requests import Request

__all__ = ["Container", "DependencyError", "Depends", "Inject", "InjectMarker",
           "check_dependencies"]


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
        self._auto: dict[Any, _Factory] = {}
        """Factories for unregistered classes and functions (not overrides: not ``in``)."""

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

    def problem(self, key: Any, _seen: frozenset[Any] = frozenset()) -> str | None:
        """Why ``key`` can't be provided (following factories' own ``Inject`` parameters),
        or ``None`` when it can."""
        try:
            if key in self._instances:
                return None
        except TypeError:
            return f"{key!r} is not a valid dependency key (it is not hashable)"
        if key in _seen:
            return None
        factory = self._factories.get(key)
        if factory is None:
            if isinstance(key, type):
                if not _needs_no_arguments(key):
                    return (f"can't provide {_key_name(key)}: its constructor needs arguments; "
                            f"register it with app.container.register(...)")
                return None
            if not callable(key):
                return f"nothing is registered for {key!r}"
            factory = _Factory(key, singleton=False)
        for sub in factory.plan.container_keys():
            found = self.problem(sub, _seen | {key})
            if found is not None:
                return found
        return None

    async def resolve(self, key: Any, request: Request | None = None, *,
                      use_cache: bool = True) -> Any:
        """The value for ``key``; a factory runs once per request unless ``use_cache=False``
        (singletons and registered instances are always shared)."""
        try:
            return self._instances[key]
        except (KeyError, TypeError):
            pass
        factory = self._factories.get(key) or self._auto.get(key)
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
            self._auto[key] = factory
        if factory.singleton:
            value = await self._call(factory, request)
            self._instances[key] = value
            return value
        if request is None or not use_cache:
            return await self._call(factory, request)
        # Once per request: a factory met twice in one request's dependency tree runs once.
        cache: dict[Any, Any] = request.scope.setdefault(CACHE_SCOPE_KEY, {})
        if ("factory", key) not in cache:
            cache["factory", key] = await self._call(factory, request)
        return cache["factory", key]

    async def _call(self, factory: _Factory, request: Request | None) -> Any:
        kwargs = await factory.plan.resolve_dependencies(request, self)
        fn = factory.fn
        if inspect.iscoroutinefunction(fn):
            return await fn(**kwargs)
        result = fn(**kwargs)
        if inspect.isawaitable(result):
            return await result
        return result


def _routes_with_plans(routes: Iterable[Any]) -> Iterable[tuple[Any, Any, CallablePlan]]:
    for route in routes:
        endpoint = getattr(route, "endpoint", None)
        plan = getattr(endpoint, "plan", None)
        if isinstance(plan, CallablePlan):
            yield route, endpoint, plan
        yield from _routes_with_plans(getattr(route, "routes", None) or ())


def check_dependencies(app: Any, container: Container | None = None) -> None:
    """Raise :class:`DependencyError` naming the handler when a dependency of one of
    ``app``'s routes (an app, a router, or a list of routes) can't be provided by
    ``container`` (default: ``app.container``). The app calls it when it starts."""
    container = container if container is not None else app.container
    routes = app if isinstance(app, list | tuple) else app.routes
    for route, endpoint, plan in _routes_with_plans(routes):
        for key in plan.container_keys():
            problem = container.problem(key)
            if problem is not None:
                handler = getattr(endpoint, "handler", endpoint)
                raise DependencyError(
                    f"handler {getattr(handler, '__qualname__', handler)!r} "
                    f"({getattr(route, 'path', '?')}): {problem}")
