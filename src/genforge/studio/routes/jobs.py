"""Jobs: queue one (POST /api/jobs/KIND), follow it (events, Server-Sent Events, log), stop,
resume, retry or delete it, and fetch what it wrote (files, zips)."""
# No `from __future__ import annotations` here: FastAPI reads the request models from each
# route's annotations, which are set from the job kinds below.
import asyncio
import time
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ..db import FINAL, STATES
from ..home import inside, remove
from ..jobs import KINDS, Kind
from ..state import Studio
from .common import confirm, event_view, job_view, listing, send_file, send_zip, studio_of

router = APIRouter(prefix="/api", tags=["jobs"])
POLL_S = 0.5           # how often a stream looks for new events
KEEP_ALIVE_S = 15.0    # a comment line this often keeps proxies from closing a quiet stream
LOG_TAIL = 64 << 10


def _add_enqueue(name: str, kind: Kind) -> None:
    def enqueue(body: BaseModel, studio: Studio = Depends(studio_of)) -> dict:
        return job_view(studio.store.enqueue(kind.prepare(body, studio.refs)), detail=True)

    enqueue.__annotations__ = {"body": kind.request, "studio": Studio, "return": dict}
    doc = (kind.request.__doc__ or "").strip()
    router.add_api_route(f"/jobs/{name}", enqueue, methods=["POST"], status_code=201,
                         name=f"queue_{name}", summary=f"Queue a {name} job",
                         description=f"{doc}\n\nThe configuration is copied now: the job runs "
                                     "with it whatever changes later.")


for _name, _kind in KINDS.items():
    _add_enqueue(_name, _kind)


@router.get("/jobs", summary="List jobs, newest first")
def list_jobs(state: Literal[STATES] | None = None, kind: Literal[tuple(KINDS)] | None = None,
              limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
              studio: Studio = Depends(studio_of)) -> dict:
    jobs = studio.store.jobs(state=state, kind=kind, limit=limit, offset=offset)
    return {"jobs": [job_view(j) for j in jobs],
            "counts": studio.store.counts()}


def job_of(job_id: int, studio: Studio = Depends(studio_of)) -> dict:
    """The job a path names (found before a response starts, so a stream can still be a 404)."""
    job = studio.store.job(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


@router.get("/jobs/{job_id}", summary="A job: state, progress, configuration, result")
def get_job(job: dict = Depends(job_of)) -> dict:
    return job_view(job, detail=True)


@router.get("/jobs/{job_id}/events", summary="A job's events after an id (polling)")
def job_events(job: dict = Depends(job_of), after: int = Query(0, ge=0),
               limit: int = Query(500, ge=1, le=5000), studio: Studio = Depends(studio_of)) -> dict:
    events = [event_view(e, e["job"]) for e in
              studio.store.events(job_id=job["id"], after=after, limit=limit)]
    return {"job": job_view(job), "events": events,
            "next": events[-1]["id"] if events else after}


async def _stream(studio: Studio, job_id: int | None, after: int, seconds: float
                  ) -> AsyncIterator[ServerSentEvent]:
    """Events as they are stored; a job's stream ends once the job has finished and every event
    has been sent, the queue's after `seconds` (EventSource reconnects with Last-Event-ID)."""
    started = quiet = time.monotonic()
    while time.monotonic() - started < seconds:
        events = await run_in_threadpool(studio.store.events, job_id=job_id, after=after)
        for event in events:
            after = event["id"]
            yield ServerSentEvent(data=event_view(event, event["job"]), id=str(event["id"]),
                                  event=event.get("event"))
        if events:
            quiet = time.monotonic()
            continue
        if job_id is not None:
            job = await run_in_threadpool(studio.store.job, job_id)
            if job is None or job["state"] in FINAL:
                return
        if time.monotonic() - quiet > KEEP_ALIVE_S:
            quiet = time.monotonic()
            yield ServerSentEvent(comment="keep-alive")
        await asyncio.sleep(POLL_S)


@router.get("/jobs/{job_id}/stream", response_class=EventSourceResponse,
            summary="A job's events as Server-Sent Events, until it finishes")
async def job_stream(job: dict = Depends(job_of), after: int = Query(0, ge=0),
                     last_event_id: int | None = Header(None),
                     studio: Studio = Depends(studio_of)) -> AsyncIterator[ServerSentEvent]:
    async for event in _stream(studio, job["id"], last_event_id or after, float("inf")):
        yield event


@router.get("/stream", response_class=EventSourceResponse,
            summary="Every job's events (state changes and progress) as Server-Sent Events")
async def queue_stream(after: int | None = Query(None, ge=0, description="default: from now"),
                       seconds: float = Query(600, gt=0, le=3600),
                       last_event_id: int | None = Header(None),
                       studio: Studio = Depends(studio_of)) -> AsyncIterator[ServerSentEvent]:
    start = last_event_id if last_event_id is not None else after
    if start is None:
        start = await run_in_threadpool(studio.store.last_event_id)
    async for event in _stream(studio, None, start, seconds):
        yield event


@router.get("/jobs/{job_id}/log", response_class=PlainTextResponse, summary="A job's log (its end)")
def job_log(job: dict = Depends(job_of), tail: int = Query(LOG_TAIL, ge=1, le=16 << 20),
            studio: Studio = Depends(studio_of)) -> str:
    path = studio.home.job_folder(job["id"]) / "log.txt"
    if not path.is_file():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - tail))
        return f.read().decode("utf-8", errors="replace")


@router.post("/jobs/{job_id}/stop", summary="Stop a job (training saves a checkpoint first)")
def stop_job(job: dict = Depends(job_of), studio: Studio = Depends(studio_of)) -> dict:
    return job_view(studio.store.request_stop(job["id"]))


@router.post("/jobs/{job_id}/resume", summary="Resume a stopped train job from its checkpoint")
def resume_job(job: dict = Depends(job_of), studio: Studio = Depends(studio_of)) -> dict:
    if not KINDS[job["kind"]].resumable:
        raise HTTPException(409, f"job {job['id']} is a {job['kind']} job: only train and "
                                 "distill jobs resume (retry runs any other again)")
    return job_view(studio.store.requeue_by_user(job["id"], ("stopped",), "resumed"))


@router.post("/jobs/{job_id}/retry", summary="Run a failed or stopped job again")
def retry_job(job: dict = Depends(job_of), studio: Studio = Depends(studio_of)) -> dict:
    return job_view(studio.store.requeue_by_user(job["id"], ("failed", "stopped"), "retried"))


@router.delete("/jobs/{job_id}", summary="Delete a finished job and its files (?confirm=ID)")
def delete_job(job: dict = Depends(job_of), confirm_id: int | None = Query(None, alias="confirm"),
               studio: Studio = Depends(studio_of)) -> dict:
    confirm(confirm_id, job["id"], "job")
    folder, trashed = studio.home.job_folder(job["id"]), []
    deleted = studio.store.delete_job(job["id"], lambda j: trashed.append(studio.home.trash(folder)))
    if trashed[0] is not None:
        remove(trashed[0])
    studio.models.pop(str(folder / "run" / "model"), None)  # a model kept for quick samples
    return {"deleted": job_view(deleted)}


@router.get("/jobs/{job_id}/files", summary="The files a job wrote")
def job_files(job: dict = Depends(job_of), studio: Studio = Depends(studio_of)) -> dict:
    return {"files": listing(studio.home.job_folder(job["id"]), f"/api/jobs/{job['id']}/files")}


@router.get("/jobs/{job_id}/files/{path:path}", response_class=FileResponse,
            summary="One file a job wrote")
def job_file(path: str, job: dict = Depends(job_of),
             studio: Studio = Depends(studio_of)) -> FileResponse:
    return send_file(studio.home.job_folder(job["id"]), path, inline=True)


@router.get("/jobs/{job_id}/download", response_class=FileResponse,
            summary="A job's folder, or a folder in it (?path=out), as a zip")
def job_download(path: str | None = None, job: dict = Depends(job_of),
                 studio: Studio = Depends(studio_of)) -> FileResponse:
    root = studio.home.job_folder(job["id"])
    folder = inside(root, path) if path else root
    return send_zip(studio, folder, f"job-{job['id']}" + (f"-{folder.name}" if path else ""))
