"""What a setting is: its type, default and allowed values, declared once as data.

An `Option` is declarative (bounds, choices) rather than a Python callable so it can be written
to and read from `catalog.json`: the torch-free validator then checks a study file against the
very declarations the torch factories were registered with. A `Table` is a mapping of options,
e.g. one section of a study file; its `selector` field names a registered entry (a loss, a
model) whose own options are allowed beside it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

REQUIRED = "<required>"  # the default of an option that has none: the user must give it

# option type -> the Python types a YAML value may have (bool is never a number: `true` where a
# number belongs is a typo, not 1)
TYPES: dict[str, tuple[type, ...]] = {
    "number": (int, float), "int": (int,), "bool": (bool,), "str": (str,), "list": (list,),
    "path": (str,), "file": (str,), "auto_bool": (str, bool), "numbers": (list,),
}


@dataclass(frozen=True)
class Option:
    """One setting. `low` / `high` bound numbers (closed unless `*_open`); `choices` lists the
    allowed values; `path` / `file` values are made absolute (a `file` must exist)."""

    type: str
    default: Any = REQUIRED
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default == REQUIRED

    def type_problem(self, value: Any) -> str | None:
        kinds = TYPES[self.type]
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            return f"must be of type {self.type.replace('auto_bool', 'auto, true or false')}"
        if self.type == "number" and not math.isfinite(value):
            return "must be a finite number"
        return None

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value`, or None."""
        bad_type = self.type_problem(value)
        if bad_type:
            return bad_type
        if self.choices is not None and value not in self.choices:
            if self.type == "str":  # the wording of every "no such name" message
                return f"unknown value {value!r}; known: {', '.join(sorted(self.choices))}"
            return f"must be one of {', '.join(map(str, self.choices))}"
        if self.type == "list" and not (value and all(isinstance(v, str) for v in value)):
            return "must be a non-empty list of names"
        if self.type == "numbers":
            nums = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
            if not value or len(nums) != len(value) or any(v < 0 for v in nums):
                return "must be a non-empty list of numbers >= 0"
            if sorted(set(nums)) != nums:
                return "must be increasing"
            return None
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return f"must be {'>' if self.low_open else '>='} {self.low:g}{self._range()}"
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return f"must be {'<' if self.high_open else '<='} {self.high:g}{self._range()}"
        return None

    def _range(self) -> str:
        if self.low is None or self.high is None:
            return ""
        return f" (range {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'})"

    def to_json(self) -> dict[str, Any]:
        # `is` rather than `in`: low = 0 equals False, and must be kept
        d = {k: v for k, v in asdict(self).items()
             if k in ("type", "default") or not (v is None or v is False or v == "")}
        if self.choices is not None:
            d["choices"] = list(self.choices)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Option":
        d = dict(d)
        if "choices" in d:
            d["choices"] = tuple(d["choices"])
        return cls(**d)


# Short constructors, so declarations read like signatures: gamma=Num(2.0, low=0)
def Num(default: Any = REQUIRED, low: float | None = None, high: float | None = None, *, low_open: bool = False,
        high_open: bool = False, doc: str = "") -> Option:
    return Option("number", default, low, high, low_open, high_open, doc=doc)


def Int(default: Any = REQUIRED, low: int | None = None, high: int | None = None, *, choices: tuple | None = None,
        doc: str = "") -> Option:
    return Option("int", default, low, high, choices=choices, doc=doc)


def Str(default: Any = REQUIRED, choices: tuple[str, ...] | None = None, doc: str = "") -> Option:
    return Option("str", default, choices=choices, doc=doc)


def Bool(default: Any = REQUIRED, doc: str = "") -> Option:
    return Option("bool", default, doc=doc)


def Fraction(default: Any = REQUIRED, doc: str = "") -> Option:
    """A number in [0, 1)."""
    return Num(default, 0, 1, high_open=True, doc=doc)


@dataclass(frozen=True)
class Table:
    """A mapping of options (a study-file section, or a sub-mapping of one).

    `selector` is the field naming an entry of registry `kind` (loss.name, rebalance.method);
    the chosen entry's own options sit beside it, or in the sub-mapping `params_in` (data.params).
    """

    fields: Mapping[str, "Option | Table"]
    selector: str | None = None
    kind: str | None = None
    params_in: str | None = None
    doc: str = ""

    def defaults(self) -> dict[str, Any]:
        """Every field's default (sub-tables filled in); required fields are left out."""
        out: dict[str, Any] = {}
        for k, f in self.fields.items():
            if isinstance(f, Table):
                out[k] = f.defaults()
            elif not f.required:
                out[k] = f.default
        if self.params_in:
            out[self.params_in] = {}
        return out
