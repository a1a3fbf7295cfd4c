"""What the routes share: the studio, job and file formatting, files and zips sent back."""
from __future__ import annotations

import os
from pathlib import Path

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from ..home import inside, remove, zip_folder
from ..state import Studio


def studio_of(request: Request) -> Studio:
    return request.app.state.studio


def confirm(given: int | None, expected: int, what: str) -> None:
    """Deleting asks for the id again (?confirm=ID), so a stray request deletes nothing."""
    if given != expected:
        raise HTTPException(400, f"deleting {what} {expected} removes its files too: repeat its "
                                 f"id as ?confirm={expected}")


def event_view(event: dict, job_id: int) -> dict:
    """An event with a URL for the preview it names (a path inside the job's folder)."""
    preview = (event.get("info") or {}).get("preview")
    if preview and not preview.startswith("/"):
        return {**event, "preview_url": f"/api/jobs/{job_id}/files/{preview}"}
    return event


def job_view(job: dict, *, detail: bool = False) -> dict:
    """A job as the API shows it: state, progress (with a URL for the newest preview), worker."""
    base = f"/api/jobs/{job['id']}"
    progress = event_view(dict(job["last_event"] or {}), job["id"])
    view = {key: job[key] for key in ("id", "kind", "state", "request", "created", "queued_at",
                                      "started", "finished", "attempts", "error", "result",
                                      "stop_requested")}
    view["progress"] = progress or None
    view["worker"] = ({"pid": job["lease_pid"], "host": job["lease_host"],
                       "lease_expires": job["lease_expires"], "heartbeat": job["heartbeat"]}
                      if job["lease_owner"] else None)
    view["links"] = {"events": f"{base}/events", "stream": f"{base}/stream", "log": f"{base}/log",
                     "files": f"{base}/files", "download": f"{base}/download"}
    if detail:
        view["config"] = job["call"]
    return view


def listing(folder: Path, url: str) -> list[dict]:
    """Every file under a folder (links left out) with its size and URL."""
    files = []
    if folder.is_dir():
        for base, dirs, names in os.walk(folder):
            dirs.sort()
            for name in sorted(names):
                path = Path(base, name)
                if name == ".lock" or path.is_symlink():
                    continue
                rel = path.relative_to(folder).as_posix()
                files.append({"path": rel, "bytes": path.stat().st_size, "url": f"{url}/{rel}"})
    return files


def send_file(root: Path, name: str, *, inline: bool = False) -> FileResponse:
    """One file under root (checked: no traversal, no links), as a download; inline: for a page
    to show (what genforge wrote: an evaluation report in a frame), where HTML runs sandboxed,
    without scripts."""
    path = inside(root, name)
    if not path.is_file():
        raise HTTPException(404, f"no file {name!r}")
    if not inline:
        return FileResponse(path, filename=path.name)
    return FileResponse(path, filename=path.name, content_disposition_type="inline",
                        headers={"Content-Security-Policy": "sandbox"})


def send_zip(studio: Studio, folder: Path, name: str) -> FileResponse:
    """A folder as a zip, made under HOME/tmp and removed once sent."""
    if not folder.is_dir():
        raise HTTPException(404, f"no folder {name!r}")
    staging = studio.home.staging()
    target = zip_folder(folder, staging / f"{name}.zip")
    return FileResponse(target, filename=target.name, media_type="application/zip",
                        background=BackgroundTask(remove, staging))
