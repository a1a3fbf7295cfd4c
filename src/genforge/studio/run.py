"""`genforge studio`: serve the app with uvicorn on a socket of its own, beside its workers."""
from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
from pathlib import Path

import torch
import uvicorn

from .. import io
from ..errors import GenforgeError
from .home import Home
from .security import ensure_token, is_loopback
from .server import create_app
from .state import Settings


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise GenforgeError(f"cannot listen on {host}:{port} ({err.strerror or err}); is "
                            "another program using the port? (--port)") from None
    sock.listen(2048)
    return sock


def run(home_dir: Path, host: str, port: int, workers: int) -> int:
    """Serve until interrupted; returns the exit status."""
    if workers < 1:
        raise GenforgeError(f"--workers must be at least 1, got {workers}")
    home = Home(home_dir).make()
    lock = open(home.lock, "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise GenforgeError(f"another genforge studio is serving {home.root}; stop it first, "
                            "or give another --home") from None
    # Everything the studio writes stays in its home, the library's caches too (workers inherit
    # this). Signing keys stay the user's own ($GENFORGE_KEYS or the default folder), so files
    # are signed as the CLI signs them.
    os.environ["GENFORGE_CACHE"] = str(home.cache)
    tempfile.tempdir = str(home.tmp)  # where uploads are spooled while they arrive
    torch.set_num_threads(1)  # this process serves requests; its quick samples are small
    token = None
    if not is_loopback(host):
        token, made = ensure_token(home.token)
        if made:
            print(f"genforge studio: access token (shown once; kept in {home.token}): {token}",
                  flush=True)
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    app = create_app(Settings(home=home.root, workers=workers, token=token))
    io.write_text(home.root / "server.json",
                  json.dumps({"url": url, "pid": os.getpid(), "port": port}) + "\n")
    print(f"genforge studio: serving {url} (API docs: {url}/docs; home {home.root}; "
          f"{workers} worker{'s' if workers > 1 else ''}); Ctrl-C stops", flush=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
    lock.close()
    return 0
