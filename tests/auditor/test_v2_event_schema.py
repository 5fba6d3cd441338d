"""event.schema.json for format v2: every event of the hand-worked v2 logs validates; a v2
shape under the wrong version, a v2 money event without its pool, and the v1 shapes of
tests/auditor/formats keep their verdicts."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.auditor.v2_kit import lines
from tests.auditor.v2_logs import EVENTS, FUND, T1_EVENTS, T1_FUND

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "event.schema.json")
                    .read_text("utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)
ALL = [json.loads(x) for x in lines(EVENTS, FUND) + lines(T1_EVENTS, T1_FUND)]


def test_the_schema_is_valid_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("event", ALL, ids=lambda e: f"{e['type']}/{e['version']}")
def test_every_event_of_the_v2_logs_validates(event: dict[str, Any]) -> None:
    assert [e.message for e in VALIDATOR.iter_errors(event)] == []


def changed(index: int, **top: Any) -> dict[str, Any]:
    event = copy.deepcopy(ALL[index])
    event.update(top)
    return event


@pytest.mark.parametrize(("event", "why"), [
    (changed(2, version=1), "capital_injected/1 has no pool"),
    (changed(0, version=3), "no version 3"),
    (changed(7, type="backstop_drawn", version=2), "backstop_drawn has version 1 only"),
    (changed(24, version=2), "market_observed has version 1 only"),
    (changed(6, data={**ALL[6]["data"], "pool": "Alt"}), "pool id pattern"),
    (changed(6, data={k: v for k, v in ALL[6]["data"].items() if k != "pool"}), "pool missing"),
    (changed(7, data={**ALL[7]["data"], "pool": None}), "deficit_covered/2 names its pool"),
    (changed(1, data={**ALL[1]["data"], "policy": {**ALL[1]["data"]["policy"],
                                                   "layers": [{}]}}), "layers must be []"),
    (changed(22, data={**ALL[22]["data"], "peak": None}), "adl_started has a peak"),
])
def test_invalid_v2_events(event: dict[str, Any], why: str) -> None:
    assert not VALIDATOR.is_valid(event), why


def test_the_v2_logs_hold_the_event_types_they_are_meant_to() -> None:
    assert (ALL[22]["type"], ALL[24]["type"], ALL[26]["type"]) == (
        "adl_started", "market_observed", "adl_ended")


def test_the_v2_logs_replay_with_every_event_checked_against_the_schema() -> None:
    from auditor.replays import replay

    assert replay(lines(EVENTS, FUND), schema_check=True).count == 15
    assert replay(lines(T1_EVENTS, T1_FUND), schema_check=True).count == 12
