"""Job kinds: the request each kind takes, what is copied when it is queued (`prepare`: the library
call with every reference resolved to a path and every value the library can check cheaply
checked, so a bad request is refused at once, not failed later), and the library call a worker
makes (`run`). A job's configuration is this copy: what it names may change afterwards, the job
does not.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .. import api
from ..errors import ConfigError, GenforgeError
from . import schemas
from .db import Store
from .home import Home, PathError, inside
from .schemas import given


MODEL_KINDS = ("train", "distill")  # the job kinds whose run folder holds an exported model


class NotFound(GenforgeError):
    """A dataset, job or input a request names does not exist."""


class Refs:
    """Resolves what a request names (datasets, models, inputs, encoders) to paths in the home."""

    def __init__(self, home: Home, store: Store):
        self.home, self.store = home, store

    def data(self, ref: int | str) -> tuple[str, dict | None]:
        """(the source the library reads, the dataset row or None for a named dataset)."""
        if isinstance(ref, str):
            return ref, None
        dataset = self.store.dataset(ref)
        if dataset is None:
            raise NotFound(f"no dataset {ref}")
        return dataset["source"], dataset

    def options(self, options: dict[str, Any], dataset: dict | None) -> dict[str, Any]:
        """The dataset's own data options, then the request's; a legend must be a game's name or
        a file of the dataset (never a path elsewhere on the server)."""
        merged = {**(dataset["options"] if dataset else {}), **options}
        legend = merged.get("legend")
        if legend is not None and legend not in api.level_legends():
            if dataset is None or dataset["named"]:
                raise ConfigError(f"data.legend {legend!r}: give a game's name "
                                  f"({', '.join(api.level_legends())}) or a file of an uploaded dataset")
            try:
                merged["legend"] = str(inside(Path(dataset["source"]), legend))
            except PathError as err:
                raise ConfigError(f"data.legend: {err}") from None
        return merged

    def job(self, job_id: int, *kinds: str) -> dict:
        """A finished job of one of these kinds."""
        job = self.store.job(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        if job["kind"] not in kinds or job["state"] != "done":
            raise ConfigError(f"job {job_id} is a {job['kind']} job that is {job['state']}; a "
                              f"finished {' or '.join(kinds)} job is needed")
        return job

    def model(self, job_id: int) -> str:
        """The exported model folder of a finished train or distill job."""
        self.job(job_id, *MODEL_KINDS)
        folder = self.home.job_folder(job_id) / "run" / "model"
        if not (folder / "model.safetensors").is_file():
            raise ConfigError(f"job {job_id} has no exported model")
        return str(folder)

    def input(self, input_id: int, kind: str) -> str:
        row = self.store.input(input_id)
        if row is None:
            raise NotFound(f"no input {input_id}")
        if row["kind"] != kind:
            raise ConfigError(f"input {input_id} is a {row['kind']} file; this job takes {kind}")
        return row["path"]

    def encoder(self, job_id: int) -> str:
        return self.job(job_id, "features")["result"]["encoder"]


def spec(kind: str, request: BaseModel, call: dict, **refs: Any) -> dict:
    return {"kind": kind, "request": request.model_dump(mode="json", exclude_none=True),
            "call": call, **refs}


# -- prepare: request -> the job's configuration, copied now --------------------------------------
def prepare_train(req: schemas.TrainRequest, refs: Refs) -> dict:
    source, dataset = refs.data(req.data)
    options = refs.options(given(req.options), dataset)
    config = api.resolve_config(source, req.preset, req.family, **options)
    return spec("train", req, {"config": config.to_dict(), "family": req.family},
                dataset_id=dataset and dataset["id"])


def prepare_distill(req: schemas.DistillRequest, refs: Refs) -> dict:
    model, options = refs.model(req.model), given(req.options)
    api.distill_config(model, **options)  # the teacher's family, the options and the budget
    return spec("distill", req, {"model": model, "options": options})


def prepare_audit(req: schemas.AuditRequest, refs: Refs) -> dict:
    source, dataset = refs.data(req.data)
    options = refs.options(given(req.options), dataset)
    api.data_config(source, **options)  # every option checked now
    return spec("audit", req, {"data": source, "features": req.features, "options": options},
                dataset_id=dataset and dataset["id"])


def prepare_features(req: schemas.FeaturesRequest, refs: Refs) -> dict:
    source, dataset = refs.data(req.data)
    options = refs.options(given(req.options), dataset)
    api.data_config(source, **options)
    return spec("features", req, {"data": source, "params": given(req.params), "options": options},
                dataset_id=dataset and dataset["id"])


def prepare_generate(req: schemas.GenerateRequest, refs: Refs) -> dict:
    train_data = refs.data(req.train_data)[0] if req.train_data is not None else None
    return spec("generate", req, {"model": refs.model(req.model), "params": given(req.params),
                                  "interpolate": given(req.interpolate) or None,
                                  "sampling": given(req.sampling), "train_data": train_data},
                model_job=req.model)


def prepare_evaluate(req: schemas.EvaluateRequest, refs: Refs) -> dict:
    source, dataset = refs.data(req.data)
    options = refs.options(given(req.options), dataset)
    train_data = refs.data(req.train_data)[0] if req.train_data is not None else None
    extractor = refs.encoder(req.features) if req.features is not None else None
    return spec("evaluate", req, {"model": refs.model(req.model), "data": source,
                                  "params": given(req.params), "options": options,
                                  "sampling": given(req.sampling), "train_data": train_data,
                                  "extractor": extractor},
                model_job=req.model, dataset_id=dataset and dataset["id"])


def prepare_inpainting(kind: str, what: str) -> Callable[[BaseModel, Refs], dict]:
    def prepare(req, refs: Refs) -> dict:
        return spec(kind, req, {"model": refs.model(req.model), "input": refs.input(req.input, what),
                                "params": given(req.params), "sampling": given(req.sampling)},
                    model_job=req.model, input_id=req.input)
    return prepare


# -- run: the library call, in a worker process ---------------------------------------------------
def relative(value: Any, folder: Path) -> Any:
    """Paths inside the job folder as paths relative to it (what the files endpoint serves)."""
    prefix = str(folder) + "/"
    if isinstance(value, str) and value.startswith(prefix):
        return value[len(prefix):]
    if isinstance(value, dict):
        return {k: relative(v, folder) for k, v in value.items()}
    if isinstance(value, list):
        return [relative(v, folder) for v in value]
    return value


def run_train(call: dict, folder: Path, should_stop: Callable[[], bool]) -> dict:
    summary = api.train(run=folder / "run", config=api.config_from_dict(call["config"]),
                        family=call["family"], should_stop=should_stop)
    return relative(summary, folder)


def run_distill(call: dict, folder: Path, should_stop: Callable[[], bool]) -> dict:
    summary = api.distill(call["model"], folder / "run", should_stop=should_stop,
                          **call["options"])
    return relative(summary, folder)


def run_audit(call: dict, folder: Path, should_stop: Callable[[], bool]) -> dict:
    record = api.audit(call["data"], out=folder / "audit.json", features=call["features"],
                       **call["options"])
    if record["items"]:  # what the dataset's page shows as its sample
        api.dataset_preview(call["data"], folder / "sample.png", **call["options"])
    return {"file": "audit.json", "text": api.audit_text(record), "warnings": record["warnings"]}


def run_features(call: dict, folder: Path, should_stop: Callable[[], bool]) -> dict:
    return api.train_features(call["data"], **call["params"], **call["options"])


# What the studio makes is made to be shared: images under the watermark's minimum get a marked,
# signed display copy this many pixels wide unless the request says otherwise (issue 26).
DISPLAY_SIZE = 256


def shared(model, params: dict) -> dict:
    """params with the studio's display-copy default for a model whose kind makes them."""
    if model.modality.has_display_copies and params.get("display_size") is None:
        return {**params, "display_size": DISPLAY_SIZE}
    return params


def run_generate(call: dict, folder: Path, should_stop: Callable[[], bool]) -> dict:
    model, out = api.load(call["model"]), folder / "out"
    if call["interpolate"]:
        items = model.interpolate(out=out, **shared(model, call["interpolate"]), **call["sampling"])
    else:
        items = model.generate(out=out, train_data=call["train_data"],
                               **shared(model, call["params"]), **call["sampling"])
    return {"out": "out", "items": len(items), "log": "out/generation.json"}


def run_evaluate(call: dict, folder: Path, should_stop: Callable[[], bool]) -> dict:
    result = api.evaluate(call["model"], call["data"], out=folder / "out",
                          extractor=call["extractor"], train_data=call["train_data"],
                          data_options=call["options"] or None, **call["params"], **call["sampling"])
    return relative(result, folder)


def run_inpainting(method: str) -> Callable[[dict, Path, Callable[[], bool]], dict]:
    def run(call: dict, folder: Path, should_stop: Callable[[], bool]) -> dict:
        model = api.load(call["model"])
        items = getattr(model, method)(call["input"], out=folder / "out", **call["params"],
                                       **call["sampling"])
        return {"out": "out", "items": len(items), "log": "out/generation.json"}
    return run


@dataclass(frozen=True)
class Kind:
    """A kind of job: its request, how it is queued and how a worker runs it."""

    request: type[BaseModel]
    prepare: Callable[[Any, Refs], dict]
    run: Callable[[dict, Path, Callable[[], bool]], dict]
    resumable: bool = False  # a stopped job continues from its checkpoint when resumed


KINDS: dict[str, Kind] = {
    "audit": Kind(schemas.AuditRequest, prepare_audit, run_audit),
    "train": Kind(schemas.TrainRequest, prepare_train, run_train, resumable=True),
    "distill": Kind(schemas.DistillRequest, prepare_distill, run_distill, resumable=True),
    "features": Kind(schemas.FeaturesRequest, prepare_features, run_features),
    "generate": Kind(schemas.GenerateRequest, prepare_generate, run_generate),
    "evaluate": Kind(schemas.EvaluateRequest, prepare_evaluate, run_evaluate),
    "harmonize": Kind(schemas.HarmonizeRequest, prepare_inpainting("harmonize", "music"),
                      run_inpainting("harmonize")),
    "complete": Kind(schemas.CompleteRequest, prepare_inpainting("complete", "level"),
                     run_inpainting("complete")),
}
