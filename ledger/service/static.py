"""`backstop serve ROOT`: a published log over HTTP with the headers C2SP tlog-tiles asks for
(schemas/README.md, "Serving a published log"; docs/SERVING.md has the same rules for nginx
and Caddy). For local use and tests: a production log sits behind a real web server.

Only regular files under ROOT are served (no symlinks, no listings); GET and HEAD only.
"""

from __future__ import annotations

import os
import re
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from stat import S_ISREG
from typing import Any

__all__ = ["CHECKPOINT_CACHE", "IMMUTABLE", "OTHER_CACHE", "headers_for", "make_server"]

CHECKPOINT_CACHE = "public, max-age=5"  # replaced by every publish, gains cosignatures
IMMUTABLE = "public, max-age=31536000, immutable"  # tiles and bundles are written once
OTHER_CACHE = "public, max-age=60"
_TEXT = "text/plain; charset=utf-8"
_CHECKPOINT = re.compile(r"(?:snapshots/[0-9]+/)?checkpoint")


def headers_for(relative: str) -> tuple[str, str]:
    """(Content-Type, Cache-Control) of the file at `relative` (a path under ROOT, `/`
    separated, no leading `/`)."""
    if _CHECKPOINT.fullmatch(relative):
        return _TEXT, CHECKPOINT_CACHE
    if relative.startswith("tile/"):
        return "application/octet-stream", IMMUTABLE
    if relative.endswith(".json"):
        return "application/json", OTHER_CACHE
    if relative.endswith((".html", ".htm")):
        return "text/html; charset=utf-8", OTHER_CACHE
    if relative.endswith((".js", ".mjs")):
        return "text/javascript; charset=utf-8", OTHER_CACHE
    if relative.endswith(".css"):
        return "text/css; charset=utf-8", OTHER_CACHE
    if relative.endswith(".png"):
        return "image/png", OTHER_CACHE
    plain = "." not in relative.rsplit("/", 1)[-1] or relative.endswith((".txt", ".jsonl", ".csv"))
    return (_TEXT if plain else "application/octet-stream"), OTHER_CACHE  # keys, seeds: text


class _Handler(SimpleHTTPRequestHandler):
    """Static files with `headers_for`'s headers; anything but a regular file is a 404."""

    root: Path

    def send_head(self) -> Any:
        relative = self.path.split("?", 1)[0].split("#", 1)[0].lstrip("/")
        if relative == "":
            relative = "index.html"
        parts = relative.split("/")
        if any(p in ("", ".", "..") for p in parts):
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        path = self.root.joinpath(*parts)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        handle = os.fdopen(fd, "rb")
        stat = os.fstat(handle.fileno())
        if not S_ISREG(stat.st_mode) or any(p.is_symlink() for p in path.parents
                                              if self.root in p.parents):
            handle.close()
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        content_type, cache = headers_for(relative)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(stat.st_size))
        self.send_header("Cache-Control", cache)
        self.send_header("Access-Control-Allow-Origin", "*")  # witnesses and the site read it
        self.end_headers()
        return handle

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the command prints its URL, not every request."""


def make_server(root: Path, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """An HTTP server of the files under `root` (bound, not yet serving; port 0: any)."""
    handler = type("Handler", (_Handler,), {"root": Path(os.path.abspath(root))})
    return ThreadingHTTPServer((host, port), handler)
