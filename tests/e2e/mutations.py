"""Seeded single mutations of a published directory, for the tamper campaigns
(tests/e2e/test_tamper.py, test_forged_logs.py): a digit changed in a decimal, a hex or base64
character changed, and the event-log mutations (amounts, dropped, swapped and duplicated lines,
policy parameters with and without their hash fixed)."""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Callable
from typing import Any

from auditor.formats.wire import canonical_bytes, sha256_hex
from auditor.verify import merkle
from auditor.verify.keys import Signer, sign_document

SEED = 20200312


def leaf_bytes(line: bytes) -> bytes:
    """The bytes a forger hashes for an export line: its canonical JSON, or the raw line when
    it is not JSON (what a careless forger would hash)."""
    try:
        return canonical_bytes(json.loads(line))
    except ValueError:
        return line.rstrip(b"\n")


def resigned(snapshot: dict[str, Any], lines: list[bytes], signer: Signer, *,
             log_size: int | None = None,
             edit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """`snapshot` made to commit to `lines` (the first `log_size`, default all) and signed
    again with `signer` alone, after `edit`: a forgery no signature or root check catches."""
    size = len(lines) if log_size is None else log_size
    doc = copy.deepcopy(snapshot)
    doc["log"] = {**doc["log"], "size": size, "root": merkle.root_of(  # its origin kept
        [merkle.leaf_hash(leaf_bytes(line)) for line in lines[:size]]).hex()}
    if edit is not None:
        edit(doc)
    doc["signatures"] = []
    doc["signatures"] = [sign_document(doc, signer)]
    return doc
AMOUNT = re.compile(
    rb'"(amount|fee|remainder|delta|deficit|fund_payment|socialized|unresolved|collateral|'
    rb'fill_price|entry_price|mark_price|size|from_amount|to_amount|unrealized_pnl)":"(-?[0-9.]+)"')

def change_digit(rng: random.Random, text: str) -> str:
    """`text` (a decimal string) with one digit changed to a different one, still a decimal."""
    spots = [i for i, c in enumerate(text) if c.isdigit()]
    i = rng.choice(spots)
    lead = (i == 0 or text[i - 1] == "-") and i + 1 < len(text) and text[i + 1].isdigit()
    choices = [d for d in "0123456789" if d != text[i] and not (lead and d == "0")]
    return text[:i] + rng.choice(choices) + text[i + 1:]


def change_hex(rng: random.Random, text: str, alphabet: str = "0123456789abcdef") -> str:
    i = rng.randrange(len(text.rstrip("=")))
    return text[:i] + rng.choice([c for c in alphabet if c != text[i]]) + text[i + 1:]


def event_mutations(rng: random.Random, lines: list[bytes]) -> list[tuple[str, str, dict[str, bytes]]]:
    out = []

    def stream(new: list[bytes]) -> dict[str, bytes]:
        return {"events.jsonl": b"".join(new)}

    with_amount = [i for i, line in enumerate(lines) if AMOUNT.search(line)]
    liquidations = [i for i, line in enumerate(lines) if b'"liquidation_settled"' in line]
    for n in range(70):
        # a third of them inside a liquidation's facts / outcome
        i = rng.choice(liquidations if n % 3 == 0 else with_amount)
        matches = list(AMOUNT.finditer(lines[i]))
        m = rng.choice(matches)
        value = m.group(2).decode()
        new_value = change_digit(rng, value).encode()
        line = lines[i][:m.start(2)] + new_value + lines[i][m.end(2):]
        assert line != lines[i]
        out.append(("amount digit", "replay", stream(lines[:i] + [line] + lines[i + 1:])))
    for _ in range(15):
        i = rng.randrange(len(lines))
        out.append(("drop line", "replay", stream(lines[:i] + lines[i + 1:])))
    for _ in range(15):
        i = rng.randrange(len(lines) - 1)
        out.append(("swap adjacent", "replay",
                    stream(lines[:i] + [lines[i + 1], lines[i]] + lines[i + 2:])))
    for _ in range(10):
        i = rng.randrange(len(lines))
        out.append(("duplicate line", "replay", stream(lines[:i + 1] + [lines[i]] + lines[i + 1:])))
    policy_line = json.loads(lines[1])
    assert policy_line["type"] == "policy_set"
    for n in range(16):
        ev = json.loads(lines[1])
        pol = ev["data"]["policy"]
        field = ("fee_cap_rate", "fund_share", "minimum_reserve", "socialization")[n % 4]
        if field == "fee_cap_rate":
            pol[field] = change_digit(rng, pol[field])
        elif field == "fund_share":
            pol[field] = {"fixed": rng.choice(["0.5", "0.9", "0.25"])}
        elif field == "minimum_reserve":
            asset = sorted(pol[field])[0]
            pol[field][asset] = change_digit(rng, pol[field][asset])
        else:
            pol[field] = rng.choice([m for m in ("adl", "none", "pro_rata_profit") if m != pol[field]])
        if n % 2:  # a careful forger also fixes the policy hash
            ev["data"]["policy_hash"] = sha256_hex(canonical_bytes(pol))
        line = canonical_bytes(ev) + b"\n"
        assert line != lines[1]
        out.append(("policy parameter", "replay", stream([lines[0], line] + lines[2:])))
    return out
