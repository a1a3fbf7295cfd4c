"""Command-line flags built from the library's option declarations (genforge.options): a flag's
name, help, default, choices and type all come from the one declaration of the option."""
from __future__ import annotations

import argparse
from collections.abc import Iterable

from .. import api
from ..options import Declaration, declarations, shown


def _preset_note(name: str) -> str:
    """Where the default preset or a family's defaults set this option, the help says so (the
    declared default would mislead); --dry-run prints the resolved value."""
    values = api.preset_values(name)
    if not values:
        return ""
    listed = ", ".join(f"{family} {shown(v)}" for family, v in values.items())
    return f"default: from --preset, {api.DEFAULT_PRESET}: {listed}; otherwise {{}}; --dry-run shows yours"


def add_declared(group, items: Iterable[Declaration], *, presets: bool = False) -> None:
    """One --flag per declaration; values stay strings (the library coerces and checks them with
    one-line errors), booleans are --x/--no-x, and an option not given is not passed at all."""
    for d in items:
        note = _preset_note(d.name) if presets else ""
        help_text = (f"{d.help} ({note.format(shown(d.default))})" if note
                     else f"{d.help} (default: {shown(d.default)})")
        help_text = help_text.replace("%", "%%")  # argparse formats help with %
        if d.is_bool:
            group.add_argument(d.flag, dest=d.name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=help_text)
            continue
        if d.choices:
            help_text += f"; one of {', '.join(str(c) for c in d.choices)}"
        group.add_argument(d.flag, dest=d.name, default=argparse.SUPPRESS, metavar="VALUE",
                           help=help_text)


def add_config_options(parser: argparse.ArgumentParser, *, sections: tuple[str, ...] | None = None,
                       skip: tuple[str, ...] = ("source",)) -> None:
    """Groups of flags for the run configuration (all sections, or those named), the data
    options grouped by the content kind that reads them."""
    for name, items in api.data_sections().items():
        title = "data options" if name == "data" else f"{name} data options"
        add_declared(parser.add_argument_group(title), [d for d in items if d.name not in skip])
    for name, cls in api.config_sections().items():
        if name == "data" or (sections is not None and name not in sections):
            continue
        add_declared(parser.add_argument_group(f"{name} options"),
                     [d for d in declarations(cls) if d.name not in skip], presets=True)


def add_sampling_options(parser: argparse.ArgumentParser, *, inpainting: bool = False) -> None:
    """The families' declared sampling (or inpainting) options as one set of flags: an option
    several families declare is one flag whose help gives each family's default; a family
    refuses the others by name. Not given: the model's default (family, then content kind)."""
    by_family = api.sampling_declarations(inpainting=inpainting)
    merged: dict[str, list[tuple[str, Declaration]]] = {}
    for family, cls in by_family.items():
        for d in declarations(cls):
            merged.setdefault(d.name, []).append((family, d))
    presets = api.kind_sampling_presets()
    title = "inpainting options" if inpainting else "sampling options"
    group = parser.add_argument_group(f"{title} (each model family takes its own; not given: "
                                      "the model's default)")
    for name, owners in merged.items():
        first = owners[0][1]
        defaults = "; ".join(f"{family} {shown(d.default)}" for family, d in owners)
        kinds = "; ".join(f"{items} {shown(options[name])}" for family, items, options in presets
                          if name in options and family in by_family)
        help_text = f"{first.help} (default: {defaults}{'; ' + kinds if kinds else ''})"
        choices = sorted({c for _, d in owners for c in (d.choices or ())}, key=str)
        if choices:
            help_text += f"; one of {', '.join(map(str, choices))}"
        help_text = help_text.replace("%", "%%")
        if first.is_bool:
            parser_action = dict(action="store_true", default=None)
        else:
            parser_action = dict(default=None, metavar="VALUE")
        group.add_argument(first.flag, dest=name, help=help_text, **parser_action)


def given(args: argparse.Namespace, *, inpainting: bool = False) -> dict:
    """The sampling options on the command line (None where not given)."""
    names = {d.name for cls in api.sampling_declarations(inpainting=inpainting).values()
             for d in declarations(cls)}
    return {name: getattr(args, name, None) for name in names}
