"""Name -> factory registries (timm style), each entry declared once by its decorator.

    @LOSSES.register("focal", gamma=Num(2.0, low=0))
    def focal(class_counts, gamma): ...

The decorator's options are the one declaration of the entry's parameters: their type,
default and check. The factory names the same parameters without defaults (checked here, at
import), `build` fills the defaults in, and `hpo.spec.catalog` reads the same declarations
(through catalog.json, written by `make catalog`) to validate study files without torch.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Generic, Mapping, TypeVar

from hpo.errors import UserError, unknown_name
from hpo.spec.options import Option

F = TypeVar("F", bound=Callable[..., Any])

ALL: dict[str, "Registry"] = {}  # kind -> registry: what catalog.json is written from


class Registry(Generic[F]):
    """Factories of one kind. `fixed` are the keywords every factory takes from the caller (the
    class counts, the model's input channels), not from the study file."""

    def __init__(self, kind: str, fixed: tuple[str, ...] = ()) -> None:
        if kind in ALL:
            raise ValueError(f"a registry of kind {kind!r} exists already")
        self.kind, self.fixed = kind, fixed
        self._items: dict[str, F] = {}
        self._options: dict[str, dict[str, Option]] = {}
        self._docs: dict[str, str] = {}
        ALL[kind] = self

    def register(self, name: str, **options: Option) -> Callable[[F], F]:
        def deco(fn: F) -> F:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            sig = inspect.signature(fn).parameters
            params = [p for p in sig if p not in self.fixed]
            if set(params) != set(options):
                raise ValueError(f"{self.kind} {name!r}: the factory takes {params}, the decorator declares "
                                 f"{sorted(options)}")
            restated = [p for p in params if sig[p].default is not inspect.Parameter.empty]
            if restated:  # the decorator holds the default; a second one could drift from it
                raise ValueError(f"{self.kind} {name!r}: give {restated} no default in the signature")
            self._items[name], self._options[name] = fn, dict(options)
            self._docs[name] = inspect.getdoc(fn) or ""
            return fn

        return deco

    def get(self, name: str) -> F:
        if name not in self._items:
            raise UserError(unknown_name(self.kind, name, list(self._items)))
        return self._items[name]

    def options(self, name: str) -> Mapping[str, Option]:
        self.get(name)
        return self._options[name]

    def with_defaults(self, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """`params` checked against the declaration, missing ones set to their defaults."""
        opts = self.options(name)
        unknown = sorted(set(params) - set(opts))
        if unknown:
            raise UserError(f"{self.kind} {name!r} takes no parameter {unknown[0]!r}; "
                            f"its parameters: {', '.join(opts) or '(none)'}")
        missing = [k for k, o in opts.items() if k not in params and o.required]
        if missing:
            raise UserError(f"{self.kind} {name!r} needs {', '.join(missing)}")
        return {**{k: o.default for k, o in opts.items() if not o.required}, **params}

    def build(self, name: str, *args: Any, **params: Any) -> Any:
        """Call the factory: fixed arguments as given, declared ones defaulted and checked."""
        fixed = {k: params.pop(k) for k in self.fixed if k in params}
        return self.get(name)(*args, **fixed, **self.with_defaults(name, params))

    def names(self) -> list[str]:
        return sorted(self._items)

    def describe(self) -> dict[str, Any]:
        """{name: {"doc": first line, "options": {param: option}}}: this kind's part of catalog.json."""
        return {n: {"doc": self._docs[n].split("\n")[0],
                    "options": {k: o.to_json() for k, o in self._options[n].items()}} for n in self.names()}
