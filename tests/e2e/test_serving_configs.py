"""docs/SERVING.md's nginx and Caddy configs, as written there (only the listen address and
the folder swapped), serve a published log with the headers C2SP tlog-tiles asks for, and
the auditor replays the log from them. Skipped when the server is not installed, unless
$BACKSTOP_REQUIRE_WEB_SERVERS is set."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from tests.factories import TIME, fund_config
from tests.processes import wait_for
from tests.publishing import SIGNER, at_300
from tests.required import skip_or_fail

DOC = Path(__file__).resolve().parents[2] / "docs" / "SERVING.md"
TEXT, IMMUTABLE = "text/plain; charset=utf-8", "public, max-age=31536000, immutable"


def block(language: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)
    assert found is not None, language
    return found.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def www(make_ledger, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """/srv/www of the docs: the log published at www/backstop/main."""
    ledger = make_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.open_fund(fund_config(), TIME)
    root = at_300(ledger, tmp_path)
    (tmp_path / "www" / "backstop").mkdir(parents=True)
    root.rename(tmp_path / "www" / "backstop" / "main")
    return tmp_path / "www"


@pytest.fixture
def nginx(www: Path, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                       else None)
    skip_or_fail(None if binary else "nginx is not installed", "BACKSTOP_REQUIRE_WEB_SERVERS")
    assert binary is not None
    port, run = free_port(), tmp_path / "nginx"
    run.mkdir()
    server = block("nginx").replace("listen 443 ssl;", f"listen 127.0.0.1:{port};") \
        .replace("root /srv/www;", f"root {www};")
    temps = "".join(f"{kind}_temp_path {run}/{kind};\n"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (run / "nginx.conf").write_text(
        f"{'user root;' if os.getuid() == 0 else ''}\nworker_processes 1;\npid {run}/pid;\n"
        f"error_log {run}/error.log;\nevents {{}}\nhttp {{\naccess_log off;\n{temps}{server}}}\n")
    yield from _run([binary, "-p", str(run), "-c", str(run / "nginx.conf"), "-g",
                     "daemon off;"], port)


@pytest.fixture
def caddy(www: Path, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("caddy")
    skip_or_fail(None if binary else "caddy is not installed", "BACKSTOP_REQUIRE_WEB_SERVERS")
    assert binary is not None
    port, run = free_port(), tmp_path / "caddy"
    run.mkdir()
    site = block("caddyfile").replace("log.example.com {", f"http://127.0.0.1:{port} {{") \
        .replace("root * /srv/www", f"root * {www}")
    (run / "Caddyfile").write_text("{\n\tadmin off\n\tauto_https off\n}\n" + site)
    yield from _run([binary, "run", "--config", str(run / "Caddyfile"), "--adapter",
                     "caddyfile"], port, {"HOME": str(run), "XDG_DATA_HOME": str(run),
                                          "XDG_CONFIG_HOME": str(run)})


def _run(argv: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, **(env or {})})
    try:
        wait_for(lambda: listening(port) or process.poll() is not None, "the server")
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        yield f"http://127.0.0.1:{port}/backstop/main/"
    finally:
        process.terminate()
        process.wait(timeout=30)


def headers(url: str) -> tuple[int, str, str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        h = response.headers
        return (response.status, h["Content-Type"], h["Cache-Control"],
                h["Access-Control-Allow-Origin"])


def check(base: str) -> None:
    assert headers(base + "checkpoint") == (200, TEXT, "public, max-age=5", "*")
    assert headers(base + "snapshots/300/checkpoint") == (200, TEXT, "public, max-age=5", "*")
    for tile in ("tile/0/000", "tile/0/001.p/44", "tile/entries/001.p/44", "tile/1/000.p/1"):
        assert headers(base + tile) == (200, "application/octet-stream", IMMUTABLE, "*"), tile
    json_type = headers(base + "snapshots/300/snapshot.json")
    assert json_type[1].split(";")[0] == "application/json" and json_type[2:] == (
        "public, max-age=60", "*")
    assert headers(base + "snapshots/300/verifier-key") == (200, TEXT, "public, max-age=60", "*")
    replay = CliRunner().invoke(audit, ["replay", base, "--key", SIGNER.verifier_key()])
    assert replay.exit_code == 0, replay.output


def test_the_nginx_config(nginx: str) -> None:
    check(nginx)


def test_the_caddy_config(caddy: str) -> None:
    check(caddy)
