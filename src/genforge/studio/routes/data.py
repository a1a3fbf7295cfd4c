"""Data in: datasets from uploads (files or zips, checked before they are kept) or by name, their
licence/source/consent manifest, and single input files (a melody, a partial level). An audit
job is queued as soon as a dataset arrives, and again when its manifest changes."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse

from ... import api
from ..home import folder_bytes, remove
from ..jobs import prepare_audit
from ..schemas import AuditRequest, Manifest, NamedDataset, given
from ..state import Studio
from ..uploads import Receiver, UploadError
from .common import confirm, job_view, listing, send_file, studio_of

router = APIRouter(prefix="/api", tags=["data"])
MAX_DATASET_UPLOAD = 2 << 30   # one dataset upload request (files or zips)
MAX_INPUT_UPLOAD = 16 << 20    # one input file
KIND_CHOICES = ("auto", *api.kinds())


def _dataset(studio: Studio, dataset_id: int) -> dict:
    dataset = studio.store.dataset(dataset_id)
    if dataset is None:
        raise HTTPException(404, f"no dataset {dataset_id}")
    return dataset


def dataset_view(dataset: dict, studio: Studio | None = None) -> dict:
    """A dataset as the API shows it (with studio: its newest audit's state and summary)."""
    base = f"/api/datasets/{dataset['id']}"
    view = {k: dataset[k] for k in ("id", "name", "kind", "named", "files", "bytes", "options",
                                    "created")}
    view["links"] = {"files": f"{base}/files", "manifest": f"{base}/manifest"}
    audit = studio and studio.store.latest("audit", dataset["id"])
    if audit:
        view["audit"] = {"job": audit["id"], "state": audit["state"],
                         "text": (audit["result"] or {}).get("text"),
                         "warnings": (audit["result"] or {}).get("warnings")}
    return view


def _audit(studio: Studio, dataset: dict) -> dict:
    """The audit job of a dataset, as a queued spec."""
    return prepare_audit(AuditRequest(data=dataset["id"]), studio.refs)


def _receive(studio: Studio, files: list[UploadFile], kind: str | None,
             unpack: bool = True) -> tuple[Receiver, str, dict]:
    receiver = Receiver(studio.home.staging(), studio.settings.limits)
    try:
        for upload in files:
            receiver.add(upload.filename or "upload", upload.file, unpack)
        found, manifest = receiver.check(kind)
    except UploadError:
        receiver.discard()
        raise
    except OSError as err:  # a name that is both a file and a folder, a full disk
        receiver.discard()
        raise UploadError(receiver.scrub(f"the upload could not be stored: {err.strerror or err}")) from None
    return receiver, found, manifest


@router.post("/datasets", status_code=201, max_body_size=MAX_DATASET_UPLOAD,
             form_limits={"max_files": 20_000, "max_fields": 20},
             summary="Upload a dataset: many files, or zips (checked before anything is kept)")
def upload_dataset(files: list[UploadFile] = File(..., description="images, music or level "
                                                  "files (names may hold folders: class/x.png), "
                                                  "or zips of them"),
                   kind: Literal[KIND_CHOICES] = Form("auto"),
                   name: str | None = Form(None, max_length=200),
                   legend: str | None = Form(None, max_length=200, description="levels: a game "
                                             "name, or the legend file among the uploaded ones"),
                   licence: str | None = Form(None, max_length=2000),
                   source: str | None = Form(None, max_length=2000),
                   consent: str | None = Form(None, max_length=2000),
                   studio: Studio = Depends(studio_of)) -> dict:
    receiver, found, manifest = _receive(studio, files, None if kind == "auto" else kind)
    fields = {**manifest, **{k: v for k, v in (("licence", licence), ("source", source),
                                                ("consent", consent)) if v}}
    label = name or (Path(files[0].filename or "upload").stem if len(files) == 1 else
                     f"{len(receiver.files)} {found} files")

    def place(dataset_id: int) -> str:
        target = studio.home.datasets / str(dataset_id)
        if fields:
            api.set_dataset_manifest(str(receiver.staging), **fields)
        os.replace(receiver.staging, target)
        return str(target)

    try:
        n, size = folder_bytes(receiver.staging)
        dataset, jobs = studio.store.add_dataset(
            {"name": label, "kind": found, "named": False, "files": n, "bytes": size,
             "options": {"kind": found, **({"legend": legend} if legend else {})}},
            place, then=lambda d: [_audit(studio, d)])
    except BaseException:
        receiver.discard()
        raise
    return {"dataset": dataset_view(dataset), "audit": job_view(jobs[0]),
            "ignored": receiver.ignored}


@router.post("/datasets/named", status_code=201, summary="Add a dataset genforge knows by name")
def add_named(body: NamedDataset, studio: Studio = Depends(studio_of)) -> dict:
    kind = next(k for k, names in api.dataset_names().items() if body.name in names)
    dataset, jobs = studio.store.add_dataset(
        {"name": body.name, "kind": kind, "named": True, "source": body.name, "files": 0,
         "bytes": 0, "options": {}}, place=lambda i: body.name,
        then=lambda d: [_audit(studio, d)])
    return {"dataset": dataset_view(dataset), "audit": job_view(jobs[0])}


@router.get("/datasets", summary="List datasets")
def list_datasets(studio: Studio = Depends(studio_of)) -> dict:
    return {"datasets": [dataset_view(d, studio) for d in studio.store.datasets()]}


@router.get("/datasets/{dataset_id}", summary="A dataset")
def get_dataset(dataset_id: int, studio: Studio = Depends(studio_of)) -> dict:
    return dataset_view(_dataset(studio, dataset_id), studio)


@router.get("/datasets/{dataset_id}/manifest", summary="A dataset's licence, source and consent")
def get_manifest(dataset_id: int, studio: Studio = Depends(studio_of)) -> dict:
    manifest = api.dataset_manifest(_dataset(studio, dataset_id)["source"])
    return {k: manifest.get(k) for k in api.DATASET_MANIFEST_FIELDS}


@router.put("/datasets/{dataset_id}/manifest",
            summary="Set a dataset's licence, source or consent (the audit runs again)")
def set_manifest(dataset_id: int, body: Manifest, studio: Studio = Depends(studio_of)) -> dict:
    dataset = _dataset(studio, dataset_id)
    api.set_dataset_manifest(dataset["source"], **given(body))
    job = studio.store.enqueue(_audit(studio, dataset))
    return {"manifest": get_manifest(dataset_id, studio), "audit": job_view(job)}


@router.get("/datasets/{dataset_id}/files", summary="A dataset's files")
def dataset_files(dataset_id: int, studio: Studio = Depends(studio_of)) -> dict:
    dataset = _dataset(studio, dataset_id)
    if dataset["named"]:
        return {"files": []}
    return {"files": listing(Path(dataset["source"]), f"/api/datasets/{dataset_id}/files")}


@router.get("/datasets/{dataset_id}/files/{path:path}", response_class=FileResponse,
            summary="One file of a dataset")
def dataset_file(dataset_id: int, path: str, studio: Studio = Depends(studio_of)) -> FileResponse:
    dataset = _dataset(studio, dataset_id)
    if dataset["named"]:
        raise HTTPException(404, f"dataset {dataset_id} is a named dataset: its files are the "
                                 "library's")
    return send_file(Path(dataset["source"]), path)


@router.delete("/datasets/{dataset_id}", summary="Delete a dataset and its files (?confirm=ID)")
def delete_dataset(dataset_id: int, confirm_id: int | None = Query(None, alias="confirm"),
                   studio: Studio = Depends(studio_of)) -> dict:
    _dataset(studio, dataset_id)
    confirm(confirm_id, dataset_id, "dataset")
    trashed = []
    dataset = studio.store.delete_dataset(dataset_id, lambda d: trashed.append(
        None if d["named"] else studio.home.trash(Path(d["source"]))))
    if trashed[0] is not None:
        remove(trashed[0])
    return {"deleted": dataset_view(dataset)}


@router.post("/inputs", status_code=201, max_body_size=MAX_INPUT_UPLOAD,
             summary="Upload one input file: a melody to harmonize, a partial level to complete")
def upload_input(file: UploadFile = File(...),
                 kind: Literal[KIND_CHOICES] = Form("auto"),
                 studio: Studio = Depends(studio_of)) -> dict:
    receiver, found, _ = _receive(studio, [file], None if kind == "auto" else kind, unpack=False)
    kept = receiver.files[0]

    def place(input_id: int) -> str:
        target = studio.home.inputs / str(input_id)
        os.replace(receiver.staging, target)
        return str(target / kept.relative_to(receiver.staging))

    try:
        row = studio.store.add_input(found, kept.name, kept.stat().st_size, place)
    except BaseException:
        receiver.discard()
        raise
    return input_view(row)


def input_view(row: dict) -> dict:
    return {k: row[k] for k in ("id", "kind", "name", "bytes", "created")}


@router.get("/inputs", summary="The uploaded input files")
def list_inputs(studio: Studio = Depends(studio_of)) -> dict:
    return {"inputs": [input_view(r) for r in studio.store.inputs()]}
