"""Option declarations: each option is declared once, as a field of a small frozen dataclass,
with its default, help text, allowed values and check. The CLI's flags, the Python API's keyword
arguments, the studio's forms and the records all read these declarations; `build` turns user
input (CLI strings, JSON, keywords) into a checked instance with one-line errors.
"""
from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from typing import Any, Callable, ClassVar, get_args, get_origin, get_type_hints

from .errors import ConfigError


@dataclass(frozen=True)
class Check:
    """A rule a value must follow, and how to say it ("at least 1")."""

    test: Callable[[Any], bool]
    expected: str


def at_least(low: float) -> Check:
    return Check(lambda v: v >= low, f"at least {low}")


def at_most(high: float) -> Check:
    return Check(lambda v: v <= high, f"at most {high}")


def between(low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> Check:
    """low <= v <= high, with either end open."""
    above = (lambda v: v > low) if open_low else (lambda v: v >= low)
    below = (lambda v: v < high) if open_high else (lambda v: v <= high)
    text = f"in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
    return Check(lambda v: above(v) and below(v), text)


def all_of(*checks: Check) -> Check:
    return Check(lambda v: all(c.test(v) for c in checks), " and ".join(c.expected for c in checks))


def each(check: Check) -> Check:
    """The check applied to every element of a tuple."""
    return Check(lambda v: all(check.test(x) for x in v), f"a list of values {check.expected}")


def shown(value: Any) -> str:
    """A default as help texts write it and the CLI reads it back: lists comma-separated, an
    empty one as none."""
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if value else "none"
    return str(value)


def option(default: Any, help: str, choices: tuple | None = None,
           check: Check | None = None) -> Any:
    """A dataclass field that declares an option: default, help text, allowed values, check."""
    return field(default=default, metadata={"help": help, "choices": choices, "check": check})


@dataclass(frozen=True)
class Declaration:
    """One option as shells see it: name, Python type, default, help, choices, check."""

    name: str
    type: Any                 # the field's type hint (e.g. int, float | None, tuple[int, ...])
    default: Any
    help: str
    choices: tuple | None
    check: Check | None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def is_bool(self) -> bool:
        return self.type is bool


@lru_cache(maxsize=None)
def declarations(cls: type) -> tuple[Declaration, ...]:
    """The options a declaring dataclass holds, in field order."""
    hints = get_type_hints(cls)
    out = []
    for f in fields(cls):
        default = f.default if f.default is not MISSING else f.default_factory()
        out.append(Declaration(f.name, hints[f.name], default, f.metadata.get("help", ""),
                               f.metadata.get("choices"), f.metadata.get("check")))
    return tuple(out)


class Declared:
    """Base of the declaring dataclasses: an instance is checked however it is built (from user
    input by build(), or directly in Python), so a loader never meets an impossible value."""

    section: ClassVar[str] = ""   # how errors name the fields ("data" -> "data.channels")

    def __post_init__(self) -> None:
        for d in declarations(type(self)):
            where = f"{self.section}.{d.name}" if self.section else d.name
            value = coerce(getattr(self, d.name), d.type, where)  # "8" -> 8; 1.5 for an int: error
            check_value(d, value, where)
            object.__setattr__(self, d.name, value)  # frozen: set once, here


def coerce(value: Any, hint: Any, where: str) -> Any:
    """Turn a JSON or CLI value into the field's type, or raise ConfigError naming the field."""
    origin, args = get_origin(hint), get_args(hint)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{where}: a value is required")
    if args and type(None) in args:  # Optional[X]
        (inner,) = [a for a in args if a is not type(None)]
        if isinstance(value, str) and value.lower() == "none":
            return None
        return coerce(value, inner, where)
    if origin is tuple:
        if isinstance(value, str):  # "1,2,2"; "" or "none" (as help shows an empty default): ()
            value = [] if value.strip().lower() == "none" else [
                v for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(coerce(v, args[0], where) for v in value)
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
            if not isinstance(value, bool):  # 2 or 0.5 is a mistake, not a yes
                raise ValueError
            return value
        if hint in (int, float) and isinstance(value, bool):
            raise ValueError  # True is not a number a user meant
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        if hint is int and isinstance(value, str):
            value = value.strip()
            if not value.lstrip("+-").isascii() or not value.lstrip("+-").isdigit():
                raise ValueError  # int() would take '1_000' and superscript digits
        if hint is str and not isinstance(value, (str, int, float)):
            raise ValueError  # a list or object where a name is expected
        result = hint(value)
        if hint is float and result != result:
            raise ValueError  # NaN passes every comparison check
        return result
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {_short(value)}") from None


def check_value(declaration: Declaration, value: Any, where: str) -> None:
    """Raise ConfigError unless value is one of the choices and passes the check (None passes
    the check where None is allowed: it means "from the data" or "the default")."""
    if declaration.choices is not None and value not in declaration.choices:
        raise ConfigError(f"{where}: {value!r} is not one of "
                          f"{', '.join(str(c) for c in declaration.choices)}")
    if declaration.check is not None and value is not None and not declaration.check.test(value):
        raise ConfigError(f"{where} must be {declaration.check.expected}, got {_short(value)}")


def _short(value: Any) -> str:
    """A value as an error message shows it: repr, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def build(cls: type, values: dict[str, Any], section: str = "") -> Any:
    """An instance of a declaring dataclass from a dict (CLI strings, JSON or Python values),
    rejecting unknown names and invalid values with one line naming the field."""
    if not isinstance(values, dict):
        raise ConfigError(f"{section or cls.__name__}: expected an object of options, got "
                          f"{type(values).__name__}")
    known = {d.name: d for d in declarations(cls)}
    unknown = set(values) - set(known)
    if unknown:
        where = f"{section}." if section else ""
        name = str(sorted(unknown)[0]).encode("unicode_escape").decode()  # one line, always
        raise ConfigError(f"unknown option {where}{name} "
                          f"(known: {', '.join(sorted(known))})")
    kwargs = {}
    for name, value in values.items():
        where = f"{section}.{name}" if section else name
        kwargs[name] = coerce(value, known[name].type, where)
        check_value(known[name], kwargs[name], where)
    return cls(**kwargs)


def defaults(cls: type) -> dict[str, Any]:
    """{name: default} of a declaring dataclass."""
    return {d.name: d.default for d in declarations(cls)}


def as_dict(instance: Any) -> dict[str, Any]:
    """The options of an instance as plain values (tuples as lists are left to JSON)."""
    return dataclasses.asdict(instance)


__all__ = ["Check", "Declaration", "Declared", "option", "declarations", "coerce", "check_value", "build",
           "defaults", "as_dict", "at_least", "at_most", "between", "all_of", "each"]
