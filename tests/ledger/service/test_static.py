"""`backstop serve`: a published log over HTTP with the headers C2SP tlog-tiles asks for
(schemas/README.md, "Serving a published log"), read back by a real HTTP client and by the
auditor replaying the log from that URL."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from ledger.service.static import make_server
from tests.factories import TIME, fund_config
from tests.publishing import SIGNER, at_300
from tests.serving import serving


@pytest.fixture
def log(make_ledger, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    ledger = make_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.open_fund(fund_config(), TIME)
    return at_300(ledger, tmp_path)


def head(url: str) -> tuple[int, str | None, str | None]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], \
                response.headers["Cache-Control"]
    except urllib.error.HTTPError as error:
        return error.code, None, None


def test_the_headers_of_each_kind_of_file(log: Path) -> None:
    (log / "evil").symlink_to(log / "checkpoint")
    with serving(make_server(log, "127.0.0.1", 0)) as port:
        base = f"http://127.0.0.1:{port}/"
        text, short = "text/plain; charset=utf-8", "public, max-age=5"
        immutable = "public, max-age=31536000, immutable"
        assert head(base + "checkpoint") == (200, text, short)
        assert head(base + "snapshots/300/checkpoint") == (200, text, short)
        assert head(base + "tile/0/000") == (200, "application/octet-stream", immutable)
        assert head(base + "tile/0/001.p/44") == (200, "application/octet-stream", immutable)
        assert head(base + "tile/entries/001.p/44") == (200, "application/octet-stream",
                                                        immutable)
        assert head(base + "tile/1/000.p/1") == (200, "application/octet-stream", immutable)
        assert head(base + "snapshots/300/snapshot.json") == (200, "application/json",
                                                              "public, max-age=60")
        assert head(base + "snapshots/300/verifier-key") == (200, text, "public, max-age=60")
        assert head(base + "evil")[0] == 404  # a symlink is not served
        assert head(base + "snapshots/")[0] == 404  # no listings
        assert head(base + "snapshots/../checkpoint")[0] == 404
        with urllib.request.urlopen(base + "checkpoint", timeout=10) as response:
            assert response.read() == (log / "checkpoint").read_bytes()
        replay = CliRunner().invoke(audit, ["replay", base, "--key", SIGNER.verifier_key()])
        assert replay.exit_code == 0, replay.output


def test_the_command_serves_until_stopped(log: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "from ledger.cli.main import main; main()",
                                "serve", str(log), "--port", "0"], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once listening
        assert line.startswith(f"serving {log} at http://127.0.0.1:")
        url = line.split(" at ", 1)[1].strip()
        assert head(url + "checkpoint") == (200, "text/plain; charset=utf-8", "public, max-age=5")
    finally:
        process.terminate()
        process.wait(timeout=10)
