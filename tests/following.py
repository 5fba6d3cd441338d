"""The `backstop follow` tests' helpers (tests/ledger/service/test_follow*.py): the simulated
facts they publish, a fund initialised as the file import's, a follower subprocess with its
JSON log, the committed stream position, and the export of a plain file import to compare.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, select

from ledger.sim.simulate import SimulationConfig, fund_config, write_facts
from ledger.store.dburl import normalize_url
from ledger.store.tables import follow_cursors
from tests.bus import Bus
from tests.factories import TIME
from tests.processes import backstop, export_bytes, kill_and_reap, run, wait_for

SIM = SimulationConfig(traders=60, steps=48)  # 152 facts: 53 liquidations, 49 fees, ...


def sim_facts(tmp: Path) -> Path:
    path = tmp / "facts.jsonl"
    write_facts(SIM, path)
    return path


def init(url: str, tmp: Path) -> None:
    config = tmp / "fund.json"
    config.write_text(json.dumps(fund_config(SIM)))
    result = run(url, "init", str(config), "--time", TIME)
    assert result.returncode == 0, result.stderr


def imported_export(tmp: Path, facts: Path) -> bytes:
    """The export after `backstop import` of `facts` into a fresh SQLite database."""
    folder = tmp / "file-import"
    folder.mkdir()
    url = f"sqlite:///{folder / 'ledger.sqlite'}"
    init(url, folder)
    result = run(url, "import", str(facts))
    assert result.returncode == 0, result.stderr
    return export_bytes(url, folder / "events.jsonl")


def position(url: str, bus: Bus) -> int:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(follow_cursors.c.position).where(
                follow_cursors.c.stream == bus.stream)).scalar() or 0)
    finally:
        engine.dispose()


class Running:
    """A follower subprocess, its JSON log in a file."""

    def __init__(self, url: str, bus: Bus, log: Path, *extra: str) -> None:
        self.log = log
        self.stderr = log.open("w")
        self.process = subprocess.Popen(
            backstop(url, "follow", "--stream", bus.stream, "--durable", bus.durable,
                     "--dead-letter", bus.dead_letter, "--servers", bus.url,
                     "--log-format", "json", *extra),
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)

    def until(self, condition: Callable[[], object], what: str, timeout: float = 60) -> None:
        """wait_for, failing at once (with the log) if the follower exited."""
        def check() -> object:
            if self.process.poll() is not None:
                raise AssertionError(f"the follower exited with {self.process.returncode}: "
                                     f"{self.log.read_text()[-3000:]}")
            return condition()
        try:
            wait_for(check, what, timeout)
        except AssertionError:
            print(self.log.read_text()[-3000:])
            raise

    def events(self, name: str) -> list[dict[str, object]]:
        return [e for e in map(json.loads, self.log.read_text().splitlines())
                if e.get("event") == name]

    def stop(self, signum: int = signal.SIGTERM) -> str:
        """Signal, wait, assert exit 0; the summary line."""
        self.process.send_signal(signum)
        out, _ = self.process.communicate(timeout=60)
        self.stderr.close()
        assert self.process.returncode == 0, self.log.read_text()[-2000:]
        return out

    def kill(self) -> None:
        kill_and_reap(self.process)
        self.stderr.close()


def lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]
