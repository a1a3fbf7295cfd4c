"""The studio's web pages: server-rendered HTML whose every action calls the REST API (studio.js).

    /                      home: datasets, runs (with progress), models
    /datasets/new          upload files or a zip, or pick a named dataset
    /datasets/ID           a sample, the audit, the licence/source/consent form
    /datasets/ID/train     a new run: the form built from the training options
    /jobs/ID               a job: live progress, loss curve, previews, stop/resume, log, outputs
    /models/ID             generate, listen, play, harmonize, complete, interpolate, evaluate
    /compare?runs=1&runs=2 curves, previews and configuration differences side by side
    /provenance            drop a file: its C2PA verdict and genforge's watermark
"""
from __future__ import annotations

import json
from functools import lru_cache

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from ... import api
from ...errors import GenforgeError
from ...options import declarations
from .. import schemas
from ..jobs import MODEL_KINDS
from ..routes.common import job_view, studio_of
from ..routes.data import KIND_CHOICES
from ..state import Studio
from . import views
from .forms import fields, names_of
from .render import render

router = APIRouter(include_in_schema=False)
PLAIN_TRAIN = ("minutes", "augment")  # shown first, in plain words; the rest folds away
DISTILL_PLAIN = ("minutes", "steps")  # the budget; ECT's own settings fold away
SECTION_TITLES = {"network": "Network", "diffusion": "Diffusion", "gan": "GAN",
                  "augment": "Augmentation", "train": "Training"}
# generate's arguments that belong to one content kind: shown up front for it, never for others
KIND_PARAMS = {"image": (), "music": ("bars", "audio"),
               "level": ("repair", "playable_only", "min_moves", "min_boxes")}
KIND_MORE = {"image": ("display_size", "display_resample")}  # its own, under "more options"


def generate_params(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(shown up front, left out of "more options") of generate's arguments for a kind's model:
    n, seed and the kind's own first; the class is chosen apart; other kinds' never appear."""
    own = (*KIND_PARAMS.get(kind, ()), *KIND_MORE.get(kind, ()))
    others = {name for names in (*KIND_PARAMS.values(), *KIND_MORE.values()) for name in names
              if name not in own}
    main = ("n", "seed", *KIND_PARAMS.get(kind, ()))
    return main, (*main, "class_label", *sorted(others))


def _missing(request: Request, what: str) -> HTMLResponse:
    return render(request, "missing.html", status=404, what=what)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, page: int = Query(1, ge=1), studio: Studio = Depends(studio_of)):
    return render(request, "home.html", **views.home(studio, page))


@router.get("/datasets/new", response_class=HTMLResponse)
def new_dataset(request: Request):
    return render(request, "dataset_new.html", kinds=KIND_CHOICES, named=api.dataset_names(),
                  legends=api.level_legends(),
                  manifest=fields(schemas.Manifest, ""))


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset(request: Request, dataset_id: int, studio: Studio = Depends(studio_of)):
    row = studio.store.dataset(dataset_id)
    if row is None:
        return _missing(request, f"dataset {dataset_id}")
    return render(request, "dataset.html", manifest_fields=fields(schemas.Manifest, ""),
                  **views.dataset(studio, row))


@lru_cache(maxsize=None)  # the declarations do not change while the studio runs (~100 ms each)
def train_groups(kind: str) -> list[tuple[str, list]]:
    """The training options in folded groups: this kind's data options, then each section."""
    data = api.data_sections()
    groups = [(f"Data ({kind})", names_of(data["data"]) + names_of(data.get(kind, [])))]
    groups += [(SECTION_TITLES.get(name, name), names_of(declarations(cls)))
               for name, cls in api.config_sections().items() if name != "data"]
    return [(title, fields(schemas.TrainOptions, "options", only=names,
                           skip=(*PLAIN_TRAIN, "kind"))) for title, names in groups]


@router.get("/datasets/{dataset_id}/train", response_class=HTMLResponse)
def new_run(request: Request, dataset_id: int, studio: Studio = Depends(studio_of)):
    row = studio.store.dataset(dataset_id)
    if row is None:
        return _missing(request, f"dataset {dataset_id}")
    audit = studio.store.latest("audit", dataset_id)
    return render(request, "train_new.html", dataset=row, audit=audit and job_view(audit),
                  chosen=fields(schemas.TrainRequest, "", only=("preset", "family")),
                  plain=fields(schemas.TrainOptions, "options", only=PLAIN_TRAIN),
                  groups=train_groups(row["kind"]), auto_family=api.kind_families()[row["kind"]])


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job(request: Request, job_id: int, page: int = Query(1, ge=1),
        studio: Studio = Depends(studio_of)):
    row = studio.store.job(job_id)
    if row is None:
        return _missing(request, f"job {job_id}")
    outputs = views.outputs(studio, row, page) if row["kind"] in ("generate", "harmonize", "complete",
                                                                 "evaluate") else None
    data_id = row["request"].get("data")
    return render(request, "job.html", job=job_view(row, detail=True), outputs=outputs,
                  dataset=studio.store.dataset(data_id) if isinstance(data_id, int) else None,
                  error=views.shown(studio, row["error"]),
                  config=views.shown(studio, json.dumps(row["call"], indent=2)))


@router.get("/jobs/{job_id}/outputs", response_class=HTMLResponse)
def job_outputs(request: Request, job_id: int, page: int = Query(1, ge=1),
                studio: Studio = Depends(studio_of)):
    row = studio.store.job(job_id)
    if row is None:
        return _missing(request, f"job {job_id}")
    return render(request, "outputs.html", outputs=views.outputs(studio, row, page))


def _model_info(studio: Studio, job_id: int) -> tuple[dict, dict, dict]:
    """What a model is, and the sampling (and inpainting) options a call would run with."""
    folder = studio.refs.model(job_id)
    with studio.sampling:
        model = studio.model(folder)
        inpainting = {}
        if api.sampling_declarations(inpainting=True).get(model.config.family):
            inpainting = model.sampling(inpainting=True)
        return model.info(), model.sampling(), inpainting


def _sampling_fields(family: str, defaults: dict, *, inpainting: bool, scope: str = "") -> list:
    """The family's own sampling options (its choices, the model's defaults)."""
    cls = api.sampling_declarations(inpainting=inpainting).get(family)
    if cls is None:
        return []
    model = schemas.options_model(f"{family}Sampling", list(declarations(cls)))
    return fields(model, "sampling", defaults=defaults, scope=scope)


@router.get("/models/{job_id}", response_class=HTMLResponse)
async def model(request: Request, job_id: int, studio: Studio = Depends(studio_of)):
    try:
        info, sampling, inpainting = await run_in_threadpool(_model_info, studio, job_id)
    except GenforgeError as err:
        return _missing(request, f"model {job_id} ({err})")
    family, kind = info["family"], info["kind"]
    main, skipped = generate_params(kind)
    datasets = [d for d in studio.store.datasets() if d["kind"] == kind]
    return render(
        request, "model.html", model_id=job_id, info=info, family=family, kind=kind,
        job=job_view(studio.store.job(job_id)),
        params=fields(schemas.GenerateParams, "params", only=main),
        more=fields(schemas.GenerateParams, "params", skip=skipped),
        sampling=_sampling_fields(family, sampling, inpainting=False),
        interpolate=fields(schemas.InterpolateParams, "interpolate", only=("seeds", "frames")),
        inpaint=_sampling_fields(family, inpainting, inpainting=True, scope="inpaint"),
        harmonize=fields(schemas.HarmonizeParams, "params", scope="harmonize"),
        complete=fields(schemas.CompleteParams, "params", scope="complete"),
        evaluate=fields(schemas.EvaluateParams, "params", scope="evaluate"),
        distill=fields(schemas.DistillOptions, "options", only=DISTILL_PLAIN, scope="distill"),
        distill_more=fields(schemas.DistillOptions, "options", skip=DISTILL_PLAIN,
                            scope="distill"),
        datasets=datasets, named=api.dataset_names().get(kind, ()),
        jobs=views.model_jobs(studio, job_id, limit=30), card=views.model_card(studio, job_id))


@router.get("/compare", response_class=HTMLResponse)
def compare(request: Request, runs: list[int] = Query(default=[]),
            studio: Studio = Depends(studio_of)):
    choices = [job_view(j) for j in studio.store.jobs(kind="train", limit=100)]
    return render(request, "compare.html", chosen=runs, choices=choices,
                  **views.compare(studio, runs[:6]))


@router.get("/provenance", response_class=HTMLResponse)
def provenance(request: Request, studio: Studio = Depends(studio_of)):
    models = [job_view(j) for j in studio.store.jobs(kind=MODEL_KINDS, state="done", limit=100)]
    return render(request, "provenance.html", models=models)
