"""Form fields built from the REST API's request models (themselves built from the library's
option declarations): a page never lists options by hand. Each field names where its value goes
in the request body ("options.lr"); studio.js sends only the fields a person filled in, so unset
options keep the library's defaults, as the CLI passes only the flags given."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class FormField:
    """One control: where its value goes, how it is shown, what it defaults to."""

    path: str                  # dotted place in the JSON body ("options.lr")
    name: str                  # the option's own name ("lr")
    label: str
    help: str
    type: str                  # integer, number, string, boolean, list-integer, list-string, ...
    choices: tuple = ()
    default: Any = None
    required: bool = False
    attrs: dict = field(default_factory=dict)   # min/max for number inputs
    scope: str = ""            # the form, where a page has several that share option names

    @property
    def id(self) -> str:
        return "-".join(p for p in ("f", self.scope, self.path.replace(".", "-")) if p).replace("_", "-")

    @property
    def shown_default(self) -> str:
        if isinstance(self.default, list):
            return ",".join(map(str, self.default)) or "none"
        return "" if self.default is None else str(self.default)


def _types(prop: dict) -> list[dict]:
    return [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]


def _kind(prop: dict) -> str:
    kinds = _types(prop)
    first = kinds[0] if kinds else {}
    if first.get("type") == "array":
        inner = _types(first.get("items", {}))
        return "list-" + (inner[0].get("type", "string") if inner else "string")
    names = {k.get("type") for k in kinds}
    if names == {"integer", "string"}:  # class labels: an index or a name
        return "string"
    return first.get("type") or ("string" if "enum" in prop or "const" in first else "string")


def label_of(name: str) -> str:
    return name.replace("_", " ").capitalize()


def fields(model: type[BaseModel], prefix: str, *, only: Iterable[str] | None = None,
           skip: Iterable[str] = (), scope: str = "", defaults: dict | None = None
           ) -> list[FormField]:
    """The form fields of a request model's properties (in `only`'s order when given);
    defaults: what the call would run with where the model's own differ (a model's sampling)."""
    schema = model.model_json_schema()
    props, required = schema.get("properties", {}), set(schema.get("required", ()))
    names = [n for n in (only if only is not None else props) if n in props and n not in set(skip)]
    made = []
    for name in names:
        prop = props[name]
        enum = prop.get("enum") or next((t.get("enum") for t in _types(prop) if "enum" in t), None)
        kind = _kind(prop)
        attrs = {}
        for t in _types(prop):
            for key, attr in (("minimum", "min"), ("maximum", "max")):
                if key in t:
                    attrs[attr] = t[key]
        made.append(FormField(
            path=f"{prefix}.{name}" if prefix else name, name=name, label=label_of(name),
            help=prop.get("description", ""), type=kind, choices=tuple(enum or ()),
            default=(defaults or {}).get(name, prop.get("x-default", prop.get("default"))),
            required=name in required,
            attrs=attrs, scope=scope))
    return made


def names_of(declared: Iterable) -> list[str]:
    """Option names of declarations (genforge.options.Declaration)."""
    return [d.name for d in declared]
