"""A tiny name -> factory registry (timm style), shared by losses, models and data sources."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Generic, Mapping, TypeVar

from hpo.errors import UserError, unknown_name

F = TypeVar("F", bound=Callable[..., Any])


class Registry(Generic[F]):
    """Factories registered by name with a decorator.

    `catalog` is the torch-free table (hpo.catalog) that study files are validated against;
    registering a name missing from it, or with other keyword parameters, fails at import.
    `fixed` are the keywords every factory of this kind takes from the caller, not the study.
    """

    def __init__(self, kind: str, catalog: Mapping[str, tuple[str, ...]], fixed: tuple[str, ...]) -> None:
        self.kind, self.catalog, self.fixed = kind, catalog, fixed
        self._items: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        def deco(fn: F) -> F:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            if name not in self.catalog:
                raise ValueError(f"{self.kind} {name!r} is missing from hpo.catalog")
            params = tuple(p for p in inspect.signature(fn).parameters if p not in self.fixed)
            if set(params) != set(self.catalog[name]):
                raise ValueError(f"{self.kind} {name!r} takes {params}, hpo.catalog says {self.catalog[name]}")
            self._items[name] = fn
            return fn

        return deco

    def get(self, name: str) -> F:
        if name not in self._items:
            raise UserError(unknown_name(self.kind, name, list(self._items)))
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)
