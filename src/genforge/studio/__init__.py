"""genforge studio: the job service under the no-code studio (`genforge studio`).

A FastAPI app over a persistent job queue (SQLite in the studio home) whose jobs each run in a
worker process through genforge.api; see server.py (the app), db/ (the queue), supervisor.py and
worker.py (running jobs), uploads.py, security.py. Nothing here is imported by the core library:
`pip install genforge[studio]` brings FastAPI and uvicorn, and only `serve` needs them.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import GenforgeError

EXTRA = ("fastapi", "uvicorn", "starlette", "pydantic", "multipart", "python_multipart")
DEFAULT_HOME = Path(os.environ.get("GENFORGE_STUDIO_HOME", "~/genforge-studio")).expanduser()


def serve(home: str | Path = DEFAULT_HOME, host: str = "127.0.0.1", port: int = 8765,
          workers: int = 1) -> int:
    """Run the studio until interrupted (Ctrl-C stops the workers, saving checkpoints)."""
    try:
        from .run import run
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in EXTRA:
            raise
        raise GenforgeError(f"the studio needs its extra packages ({err.name} is missing): "
                            "pip install 'genforge[studio]'") from None
    return run(Path(home), host, port, workers)


__all__ = ["serve", "DEFAULT_HOME"]
