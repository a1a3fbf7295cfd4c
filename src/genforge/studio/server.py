"""The studio's web application: FastAPI routes over the job store and genforge.api.

Routes only parse, call the library or the job store, and format; errors reach clients as one
JSON line, {"error": "..."} with a 4xx status, never a traceback. OpenAPI at /openapi.json, docs
at /docs.
"""
from __future__ import annotations

import sys
import traceback
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..errors import GenforgeError
from ..version import __version__
from .db import Missing, StateError
from .jobs import NotFound
from .pages.render import STATIC
from .pages.routes import router as pages
from .routes import data, jobs, models
from .security import Guard
from .state import Settings, Studio

MAX_JSON_BYTES = 1 << 20   # any request body but the uploads (routes/data.py, models.py)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


def _validation_message(err: RequestValidationError) -> str:
    errors = err.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    message = f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid")
    return message + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        return _error(422, _validation_message(err))

    @app.exception_handler(HTTPException)
    async def http(request: Request, err: HTTPException):
        return _error(err.status_code, err.detail)

    @app.exception_handler(GenforgeError)
    async def genforge(request: Request, err: GenforgeError):
        return _error(404 if isinstance(err, NotFound) else 400, str(err))

    @app.exception_handler(Missing)
    async def missing(request: Request, err: Missing):
        return _error(404, str(err))

    @app.exception_handler(StateError)
    async def conflict(request: Request, err: StateError):
        return _error(409, str(err))

    @app.exception_handler(OSError)
    async def os_error(request: Request, err: OSError):
        return _error(500, f"{err.strerror or err}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception):
        traceback.print_exc(file=sys.stderr)
        return _error(500, f"unexpected {type(err).__name__}: {str(err)[:200]} (a bug in "
                           "genforge; the server's output has the details)")


def create_app(settings: Settings) -> Guard:
    """The studio's ASGI application for these settings (the FastAPI app is its .app)."""
    studio = Studio(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        studio.start()
        try:
            yield
        finally:
            studio.stop()

    app = FastAPI(title="genforge studio", version=__version__, lifespan=lifespan,
                  max_body_size=MAX_JSON_BYTES,
                  description="Train generative models on your own data, as jobs: upload a "
                              "dataset, train, follow the progress, generate, download. Every "
                              "CLI sub-command has an endpoint here (GET /api/parity).")
    app.state.studio = studio
    add_error_handlers(app)
    for router in (data.router, jobs.router, models.router, pages):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")  # the pages' CSS and JS
    # outermost: refusals come before anything reads the request, and every error is JSON
    return Guard(app, token=settings.token, hosts=settings.hosts)
