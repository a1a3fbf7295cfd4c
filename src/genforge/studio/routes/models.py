"""Models and things out: what a trained model is, a few samples at once (outside the queue),
model downloads, provenance checks of uploaded files (verify, detect), the signing keys, the
preflight of a training, and what the library offers (for forms) and the CLI parity."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from ... import api
from ...version import __version__
from ..home import PathError, relative_parts, remove
from ..jobs import MODEL_KINDS, shared
from ..parity import parity
from ..schemas import PreflightRequest, SampleRequest, given
from ..state import Studio
from .common import listing, send_zip, studio_of

router = APIRouter(prefix="/api", tags=["models"])
MAX_CHECK_UPLOAD = 256 << 20  # files sent to verify or detect


def model_view(studio: Studio, job: dict) -> dict:
    base = f"/api/models/{job['id']}"
    return {"id": job["id"], "data": job["request"].get("data"), "finished": job["finished"],
            "steps": (job["result"] or {}).get("steps"),
            "links": {"info": base, "sample": f"{base}/sample", "download": f"{base}/download",
                      "job": f"/api/jobs/{job['id']}"}}


@router.get("/models", summary="Models: the finished train and distill jobs")
def list_models(studio: Studio = Depends(studio_of)) -> dict:
    jobs = studio.store.jobs(kind=MODEL_KINDS, state="done", limit=1000)
    return {"models": [model_view(studio, j) for j in jobs
                       if (studio.home.job_folder(j["id"]) / "run" / "model").is_dir()]}


@router.get("/models/{job_id}", summary="What a model is (genforge info)")
def model_info(job_id: int, studio: Studio = Depends(studio_of)) -> dict:
    folder = studio.refs.model(job_id)
    with studio.sampling:
        info = studio.model(folder).info()
    info["folder"] = f"jobs/{job_id}/run/model"
    return {**model_view(studio, studio.store.job(job_id)), "info": info}


@router.post("/models/{job_id}/sample", summary="A few samples now, outside the queue",
             description="At most 16 items, written with their watermark, C2PA manifest and "
                         "generation log exactly as 'genforge generate' writes them; the same "
                         "request gives the same files (they are kept, not drawn again).")
async def sample(job_id: int, body: SampleRequest, studio: Studio = Depends(studio_of)) -> dict:
    folder = await run_in_threadpool(studio.refs.model, job_id)
    request = body.model_dump(mode="json", exclude_unset=True)
    key = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
    out = studio.home.job_folder(job_id) / "samples-now" / key

    def generate() -> None:
        with studio.sampling:
            if not (out / "generation.json").is_file():
                model = studio.model(folder)
                model.generate(body.n, seed=body.seed, class_label=body.class_label, out=out,
                               **shared(model, {}), **given(body.sampling))

    async with studio.sampling_turn:  # waiting requests hold no thread of the pool
        await run_in_threadpool(generate)
    url = f"/api/jobs/{job_id}/files/samples-now/{key}"
    return {"request": request, "files": listing(out, url), "grid": f"{url}/grid.png",
            "log": f"{url}/generation.json"}


@router.get("/models/{job_id}/download", response_class=FileResponse,
            summary="A model's folder as a zip (weights, config, manifest, model card)")
def download_model(job_id: int, studio: Studio = Depends(studio_of)) -> FileResponse:
    return send_zip(studio, Path(studio.refs.model(job_id)), f"model-{job_id}")


def _checked_files(studio: Studio, files: list[UploadFile]) -> tuple[Path, list[Path]]:
    """Uploaded files for a check, under HOME/tmp by their own names (never a path)."""
    staging, paths = studio.home.staging(), []
    try:
        for upload in files:
            try:
                name = relative_parts(upload.filename or "file")[-1]
            except PathError as err:
                raise HTTPException(400, str(err)) from None
            path = staging / f"{len(paths):04d}-{name}"
            with open(path, "wb") as out:
                while chunk := upload.file.read(1 << 20):
                    out.write(chunk)
            paths.append(path)
    except BaseException:
        remove(staging)
        raise
    return staging, paths


def _named(value, staging: Path, files: list[UploadFile]):
    """Results with the uploaded names instead of the staging paths."""
    text = json.dumps(value, default=str)
    for i, upload in enumerate(files):
        name = relative_parts(upload.filename or "file")[-1]
        text = text.replace(json.dumps(str(staging / f"{i:04d}-{name}"))[1:-1],
                            json.dumps(upload.filename or "file")[1:-1])
    return json.loads(text.replace(str(staging) + "/", ""))


@router.post("/verify", max_body_size=MAX_CHECK_UPLOAD, summary="Check files' C2PA manifests")
def verify(files: list[UploadFile] = File(...), studio: Studio = Depends(studio_of)) -> dict:
    staging, paths = _checked_files(studio, files)
    try:
        reports = api.verify(paths)
        return {"reports": _named([asdict(r) for r in reports], staging, files),
                "ok": all(r.ok for r in reports)}
    finally:
        remove(staging)


@router.post("/detect", max_body_size=MAX_CHECK_UPLOAD,
             summary="Look for genforge's invisible watermark in images")
def detect(files: list[UploadFile] = File(...),
           model: int | None = Form(None, description="a train job id: whether the payload "
                                    "names its model"),
           studio: Studio = Depends(studio_of)) -> dict:
    folder = studio.refs.model(model) if model is not None else None
    staging, paths = _checked_files(studio, files)
    try:
        return {"records": _named(api.detect(paths, model=folder), staging, files)}
    finally:
        remove(staging)


@router.get("/keys", summary="The signing keys generated files are signed with (keys show)")
def keys() -> dict:
    return api.describe_keys()


@router.post("/preflight", summary="What a train job would do (train --dry-run); writes nothing")
def preflight(body: PreflightRequest, studio: Studio = Depends(studio_of)) -> dict:
    source, dataset = studio.refs.data(body.data)
    options = studio.refs.options(given(body.options), dataset)
    with studio.sampling:
        return api.preflight(source, studio.home.tmp / "preflight", preset=body.preset,
                             family=body.family, measure=body.measure, **options)


@router.get("/options", summary="What the library offers: presets, families, datasets, metrics")
def options() -> dict:
    return {"presets": api.presets(), "default_preset": api.DEFAULT_PRESET,
            "families": api.families(), "kind_families": api.kind_families(),
            "kinds": api.kinds(), "datasets": api.dataset_names(), "metrics": api.metric_names(),
            "default_metrics": api.default_metrics(), "legends": api.level_legends(),
            "kind_sampling_presets": api.kind_sampling_presets(),
            "schemas": "/openapi.json (TrainOptions, DataOptions, SamplingOptions, ...)"}


@router.get("/parity", summary="Each genforge sub-command and its endpoint (or why it is CLI-only)")
def cli_parity() -> dict:
    return parity()


@router.get("/health", summary="The studio is up: version and jobs by state")
def health(studio: Studio = Depends(studio_of)) -> dict:
    return {"status": "ok", "version": __version__,
            "jobs": studio.store.counts()}
