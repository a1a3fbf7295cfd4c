"""The REST API's request bodies, built from the library's own declarations, never a copy of them.

Options (data, network, training, sampling) come from genforge.options declarations: name,
type, help, choices, check; a library call's own arguments (n, seed, voices, ...) come from the
call's signature. Every field is optional and only the fields a request sets are passed on
(`given`), as the CLI passes only the flags given: presets, families and models keep their own
defaults, and the library checks every value with its one-line errors.
"""
from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from .. import api
from ..options import Declaration, declarations, shown

# Options that name files or folders on the server. The studio names data by dataset id and
# keeps encoders in its own cache, so these are not offered (data.legend is: a game name or a
# file of the dataset, see jobs.py).
SERVER_PATHS = ("source", "root", "eval_extractor")
FORBID = ConfigDict(extra="forbid")


def _described(help_text: str, default: Any, check: Any = None, preset_note: str = "") -> str:
    text = help_text if "default" in help_text and not preset_note else \
        f"{help_text} (default: {preset_note or shown(default)})"
    return text + (f"; must be {check.expected}" if check is not None else "")


def _json_type(hint: Any) -> Any:
    """A type hint as JSON can carry it: Path is a string, tuples are lists."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Path:
        return str
    if origin is tuple:
        return list[_json_type(args[0])]
    if args and origin in (Union, types.UnionType):
        kept = tuple(dict.fromkeys(_json_type(a) for a in args))
        return Union[kept] if len(kept) > 1 else kept[0]
    return hint


def _field(d: Declaration, *, preset_note: str = "") -> tuple[Any, Any]:
    extra = {"enum": [c for c in d.choices if c is not None]} if d.choices else None
    default = list(d.default) if isinstance(d.default, tuple) else d.default
    return (_json_type(d.type) | None,
            Field(None, description=_described(d.help, d.default, d.check, preset_note),
                  json_schema_extra={**(extra or {}), "x-default": default}))


def _preset_note(name: str) -> str:
    values = api.preset_values(name)
    if not values:
        return ""
    listed = ", ".join(f"{family} {shown(v)}" for family, v in values.items())
    return f"from the preset; {api.DEFAULT_PRESET}: {listed}"


def options_model(name: str, items: list[Declaration], *, presets: bool = False) -> type[BaseModel]:
    """A model with one optional field per declaration (those naming server paths left out)."""
    fields = {d.name: _field(d, preset_note=_preset_note(d.name) if presets else "")
              for d in items if d.name not in SERVER_PATHS}
    return create_model(name, __config__=FORBID, **fields)


def merged_sampling(name: str, *, inpainting: bool) -> type[BaseModel]:
    """The families' sampling (or inpainting) options as one model: an option several families
    declare is one field; a model refuses the options its family does not take."""
    fields: dict[str, tuple] = {}
    for family, cls in api.sampling_declarations(inpainting=inpainting).items():
        for d in declarations(cls):
            hint, info = fields.get(d.name) or _field(d)
            info.description = (info.description if d.name in fields else
                                d.help + " (default: the model's)") + f"; {family}: {d.default}"
            if d.choices:
                info.json_schema_extra["enum"] = sorted(
                    {*info.json_schema_extra.get("enum", []), *d.choices}, key=str)
            fields[d.name] = (hint, info)
    return create_model(name, __config__=FORBID, **fields)


def call_model(name: str, function: Any, skip: tuple[str, ...]) -> type[BaseModel]:
    """A model of a library call's own keyword arguments (from its signature), less `skip` (the
    arguments the studio fills in: data, model, files, output folders, signers)."""
    hints = typing.get_type_hints(function)
    fields = {}
    for p in inspect.signature(function).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in ("self", *skip):
            continue
        if p.default is p.empty:  # required (interpolate's seeds)
            fields[p.name] = (_json_type(hints[p.name]), Field(description=p.name))
            continue
        default = list(p.default) if isinstance(p.default, tuple) else p.default
        fields[p.name] = (_json_type(hints[p.name]) | None,
                          Field(None, description=f"{function.__name__}'s {p.name} "
                                f"(default: {default})", json_schema_extra={"x-default": default}))
    return create_model(name, __config__=FORBID, **fields)


def given(model: BaseModel | None) -> dict[str, Any]:
    """The fields a request set (so unset ones keep the library's defaults)."""
    return {} if model is None else model.model_dump(exclude_unset=True)


_DATA = [d for group in api.data_sections().values() for d in group]
_CONFIG = [d for name, cls in api.config_sections().items() if name != "data"
           for d in declarations(cls)]
DataOptions = options_model("DataOptions", _DATA)
TrainOptions = options_model("TrainOptions", _DATA + _CONFIG, presets=True)
DistillOptions = options_model("DistillOptions", api.distill_declarations())
SamplingOptions = merged_sampling("SamplingOptions", inpainting=False)
InpaintingOptions = merged_sampling("InpaintingOptions", inpainting=True)
_FILLED = ("train_data", "out", "signer", "extractor", "inception_weights", "data_options",
           "manifest", "model", "data", "melody", "partial")
GenerateParams = call_model("GenerateParams", api.GenerativeModel.generate, _FILLED)
InterpolateParams = call_model("InterpolateParams", api.GenerativeModel.interpolate, _FILLED)
EvaluateParams = call_model("EvaluateParams", api.evaluate, _FILLED)
FeaturesParams = call_model("FeaturesParams", api.train_features, _FILLED)
HarmonizeParams = call_model("HarmonizeParams", api.GenerativeModel.harmonize, _FILLED)
CompleteParams = call_model("CompleteParams", api.GenerativeModel.complete, _FILLED)

NAMED = tuple(name for names in api.dataset_names().values() for name in names)
DATA_HELP = f"a dataset id (POST /api/datasets), or a named dataset: {', '.join(NAMED)}"


def _named(value: int | str) -> int | str:
    if isinstance(value, str) and value not in NAMED:
        raise ValueError(f"{value!r} is neither a dataset id nor a named dataset "
                         f"({', '.join(NAMED)})")
    return value


# a dataset id, or a dataset genforge knows by name
DataRef = Annotated[Union[int, str], AfterValidator(_named)]


class TrainRequest(BaseModel):
    """Train a model (rerunning a stopped job resumes it from its checkpoint)."""

    model_config = FORBID
    data: DataRef = Field(description=DATA_HELP)
    preset: Literal[api.presets()] = api.DEFAULT_PRESET
    family: Literal[("auto", *api.families())] = "auto"
    options: TrainOptions = Field(default_factory=TrainOptions)


class DistillRequest(BaseModel):
    """Tune a diffusion model to sample in 1-2 steps (Easy Consistency Tuning); a stopped job
    resumes from its checkpoint."""

    model_config = FORBID
    model: int = Field(description="the id of a finished train job (a diffusion model)")
    options: DistillOptions = Field(default_factory=DistillOptions)


class PreflightRequest(TrainRequest):
    """What a train job with these settings would do (train --dry-run); writes nothing."""

    measure: bool = Field(False, description="measure this machine's step time (a few seconds)")


class AuditRequest(BaseModel):
    model_config = FORBID
    data: DataRef = Field(description=DATA_HELP)
    features: bool = Field(True, description="feature-space neighbours when an encoder is cached")
    options: DataOptions = Field(default_factory=DataOptions)


class FeaturesRequest(BaseModel):
    model_config = FORBID
    data: DataRef = Field(description=DATA_HELP)
    params: FeaturesParams = Field(default_factory=FeaturesParams)
    options: DataOptions = Field(default_factory=DataOptions)


class GenerateRequest(BaseModel):
    model_config = FORBID
    model: int = Field(description="the id of a finished train or distill job")
    params: GenerateParams = Field(default_factory=GenerateParams)
    interpolate: InterpolateParams | None = Field(None, description="walk through the latents "
                                                  "of these seeds instead (frames, walk.gif)")
    sampling: SamplingOptions = Field(default_factory=SamplingOptions)
    train_data: DataRef | None = Field(None, description="training data for reject_copies "
                                       "(default: the model's own)")


class SampleRequest(BaseModel):
    """A few samples at once, outside the queue (at most 16)."""

    model_config = FORBID
    n: int = Field(4, ge=1, le=16)
    seed: int = Field(0, ge=0)
    class_label: int | str | None = None
    sampling: SamplingOptions = Field(default_factory=SamplingOptions)


class EvaluateRequest(BaseModel):
    model_config = FORBID
    model: int = Field(description="the id of a finished train or distill job")
    data: DataRef = Field(description="reference data: " + DATA_HELP)
    params: EvaluateParams = Field(default_factory=EvaluateParams)
    features: int | None = Field(None, description="the id of a finished features job whose "
                                 "encoder extracts the features (default: the cached one)")
    train_data: DataRef | None = Field(None, description="the model's training data for "
                                       "memorisation (default: data)")
    options: DataOptions = Field(default_factory=DataOptions)
    sampling: SamplingOptions = Field(default_factory=SamplingOptions)


class InpaintingRequest(BaseModel):
    """What harmonize and complete share: a model, a given file, the inpainting options."""

    model_config = FORBID
    model: int = Field(description="the id of a finished train job (a music model to "
                                   "harmonize, a level model to complete)")
    input: int = Field(description="the id of an uploaded file (POST /api/inputs): a melody, "
                                   "or a partial level with '?' for the tiles to generate")
    sampling: InpaintingOptions = Field(default_factory=InpaintingOptions)


class HarmonizeRequest(InpaintingRequest):
    params: HarmonizeParams = Field(default_factory=HarmonizeParams)


class CompleteRequest(InpaintingRequest):
    params: CompleteParams = Field(default_factory=CompleteParams)


class NamedDataset(BaseModel):
    model_config = FORBID
    name: Literal[NAMED] = Field(description="a dataset genforge knows by name")


Manifest = create_model(  # a dataset's licence, source and consent (DATA/genforge-dataset.json)
    "Manifest", __config__=FORBID,
    **{name: (str | None, Field(None, max_length=2000)) for name in api.DATASET_MANIFEST_FIELDS})
