"""Who may talk to the studio.

On 127.0.0.1 (the default) only this machine reaches it; two browser attacks remain and are
refused: a page elsewhere posting to it (a cross-site request: its Origin is not the studio's)
and DNS rebinding (a foreign name resolving to 127.0.0.1: its Host is not a loopback name).
Any other host requires the token on every request: made at the first such start, printed
once, kept in HOME/token with 0600 permissions. A request gives it as `Authorization: Bearer
TOKEN`, or `?token=TOKEN` where a header cannot be set (EventSource, a download link).
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .. import io

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def ensure_token(path: Path) -> tuple[str, bool]:
    """(the token, whether it was made now); a new one is written 0600, atomically."""
    if path.is_file():
        token = path.read_text(encoding="ascii").strip()
        if len(token) >= 32:
            os.chmod(path, 0o600)
            return token, False
    token = secrets.token_urlsafe(32)

    def write(tmp: str) -> None:
        os.chmod(tmp, 0o600)
        Path(tmp).write_text(token + "\n", encoding="ascii")

    io.write_with(path, write)
    return token, True


def _host_name(value: str) -> str:
    """The host part of a Host header or an Origin's netloc (port dropped, IPv6 unbracketed)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.index("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


async def _send_error(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: the token (when required), the loopback Host check, the Origin check."""

    def __init__(self, app, token: str | None, hosts: tuple[str, ...] = LOOPBACK_NAMES):
        self.app, self.token, self.hosts = app, token, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self.refusal(scope)
        if refusal is not None:
            return await _send_error(send, *refusal)
        too_large = False

        async def send_json_errors(message) -> None:
            # the body limit (FastAPI's) answers in plain text; this API answers in JSON
            nonlocal too_large
            if message["type"] == "http.response.start" and message["status"] == 413:
                too_large = True
            elif not too_large:
                await send(message)
            elif not message.get("more_body"):
                await _send_error(send, 413, "the request body is larger than this endpoint "
                                             "accepts")

        return await self.app(scope, receive, send_json_errors)

    def refusal(self, scope) -> tuple[int, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.token is not None:
            given = headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not given:
                given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return 401, ("this studio requires its token: 'Authorization: Bearer TOKEN' "
                             "(the token is in the studio home's token file)")
        elif _host_name(host) not in self.hosts:
            return 403, f"host {host!r} refused: this studio answers on its loopback address only"
        origin = headers.get("origin")
        if scope["method"] in UNSAFE and origin is not None and not _same_site(origin, host):
            return 403, f"cross-site request from {origin[:100]} refused"
        return None


def _same_site(origin: str, host: str) -> bool:
    """Whether a request's Origin is the studio itself (the host and port it was asked by)."""
    try:
        theirs, ours = urlsplit(origin), urlsplit(f"//{host}")
        return (origin != "null" and _host_name(theirs.netloc) == _host_name(host)
                and theirs.port == ours.port)
    except ValueError:  # a port that is no number
        return False
