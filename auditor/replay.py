"""Streaming verification of an exported event log (`events.jsonl`).

One pass, one line at a time: the log's Merkle root (O(log n) memory), the fund's balances,
per-account totals, exchange-id uniqueness, the active policy, and every liquidation's
outcome and derived events re-derived with `auditor.rules`. The first wrong fact stops the
replay with a `Discrepancy` naming the log index, the field and both values.

The per-event path avoids jsonschema and Fractions (only liquidations use rationals), so a
million events cost a small multiple of reading, parsing and hashing them.

Over 400 lines on purpose: one streaming pass (`_Replayer`) whose per-event state every
check shares; split by check, it would cost a pass per check or state handed around on the
hot path (bench/audit_replay.py).
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import islice
from typing import Any

import orjson

from auditor import int_rules, rules
from auditor.formats import bounds
from auditor.formats.clip import clip
from auditor.formats.wire import (
    WireError,
    canonical_bytes,
    format_amount,
    format_decimal,
    parse_amount,
    parse_decimal,
    parse_instant,
    sha256_hex,
)
from auditor.seen import SeenIds
from auditor.verify import merkle

__all__ = ["DERIVED_TYPES", "EXTERNAL_FAMILIES", "Discrepancy", "ReplayResult", "Replayer", "replay"]

# Exchange ids are unique per fact type; event types map onto the fact that caused them.
EXTERNAL_FAMILIES = {
    "liquidation_settled": "liquidation",
    "large_liquidation_settled": "liquidation",  # format v1.1
    "fee_inflow": "fee",          # only fee inflows that are not derived from a liquidation
    "capital_injected": "capital",
    "capital_withdrawn": "capital",
    "reserve_rebalanced": "rebalance",
    "market_observed": "observation",
    "policy_set": "policy",
}
DERIVED_TYPES = ("fee_inflow", "deficit_covered", "socialized_loss_assessed", "clawback_charged")
# Kinds of a standalone fee_inflow: a liquidation_fee inflow is only ever derived.
FEE_KINDS = frozenset({"trading_fee_share", "other"})
SOURCES = frozenset({"operator", "underwriter"})
FEES, PAYOUTS, CLAWBACKS = 0, 1, 2  # slots of an account's per-asset totals
PROGRESS_EVERY = 1 << 16
_NON_NEGATIVE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_ZERO = re.compile(r"0(?:\.0+)?")
_TOP_LEVEL = frozenset({"index", "type", "version", "fund", "time", "ref", "data"})
EVENT_VERSION = 1  # the only version of every event type in format v1 and v1.1
_CAPITAL = frozenset({"asset", "amount", "source"})
_LIQUIDATION = frozenset({
    "account", "market", "side", "size", "entry_price", "collateral", "fill_price",
    "mark_price", "counterparties", "asset", "policy_version", "outcome"})
_LARGE_ONLY = ("counterparty_count", "counterparties_sha256")
# The exact `data` fields of each event type (event.schema.json, additionalProperties: false).
DATA_FIELDS = {
    "fund_opened": frozenset({"fund", "assets", "markets"}),
    "policy_set": frozenset({"policy_version", "policy", "policy_hash"}),
    "liquidation_settled": _LIQUIDATION,
    # Format v1.1 (schemas/README.md, "Large liquidations"): a head, then its chunks.
    "large_liquidation_settled": (_LIQUIDATION - {"counterparties"}) | set(_LARGE_ONLY),
    "counterparties_listed": frozenset({"chunk", "counterparties"}),
    "fee_inflow": frozenset({"kind", "asset", "amount", "account"}),
    "deficit_covered": frozenset({"asset", "amount", "account"}),
    "socialized_loss_assessed": frozenset({"asset", "amount", "method", "unresolved"}),
    "clawback_charged": frozenset({"asset", "account", "amount", "method", "adl_quantity",
                                   "adl_price"}),
    "capital_injected": _CAPITAL,
    "capital_withdrawn": _CAPITAL,
    "reserve_rebalanced": frozenset({"from_asset", "from_amount", "to_asset", "to_amount"}),
    "market_observed": frozenset({"market", "mark_price", "open_interest"}),
}
NON_CANONICAL_SHOWN = 5  # line numbers of re-encoded lines kept for the report


class Discrepancy(Exception):
    """The log disagrees with the contract at `index`; `reason` names the field and values."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(index, reason)
        self.index = index
        self.reason = reason

    def __str__(self) -> str:
        return f"event {self.index}: {self.reason}"


class _Fail(Exception):
    """Internal: a check failed at the current event (the loop adds the index)."""


@dataclass
class ReplayResult:
    """State after replaying `count` events (all of them, or the first `at_size`)."""

    count: int
    log_root: bytes
    fund: str | None
    decimals: dict[str, int]                   # asset -> decimals
    markets: dict[str, str]                    # market -> quote asset
    balances: dict[str, int]                   # asset -> units
    asset_order: list[str]                     # sorted assets: the layout of account totals
    accounts: dict[str, list[int]]             # account -> [fees, payouts, clawbacks] per asset
    totals: dict[str, list[int]]               # asset -> [fees, payouts, clawbacks] over accounts
    policy_version: int | None
    policy_hash: str | None
    metrics: dict[str, tuple[str, str]]        # market -> (last mark_price, last open_interest)
    liquidations: int = 0
    non_canonical: int = 0                     # lines hashed as their RFC 8785 re-encoding
    non_canonical_lines: list[int] = field(default_factory=list)  # the first few, 1-based
    format: int = 1                            # the log's format: 1, or 2 (auditor.replays)
    pools: dict[str, dict[str, int]] = field(default_factory=dict)  # v2: pool -> asset -> units
    market_pools: dict[str, str] = field(default_factory=dict)      # v2: market -> its pool
    adl_pools: list[str] = field(default_factory=list)              # v2: pools in ADL at the end
    value_book: Any = None  # v2: auditor.v2_value.ValueBook (terms, prices at the end)
    # v2: the members of a backstop-snapshot/3 the log calls for (auditor.v2_snapshot)
    snapshot3: dict[str, Any] | None = None

    @property
    def account_count(self) -> int:
        """Number of accounts that appear in a fee, payout or clawback."""
        return len(self.accounts)

    def account_totals(self, account: str) -> dict[str, dict[str, int]]:
        """`{asset: {fees, payouts, clawbacks}}` in units for one account."""
        sums = self.accounts[account]
        return {a: {"fees": sums[3 * i], "payouts": sums[3 * i + 1], "clawbacks": sums[3 * i + 2]}
                for i, a in enumerate(self.asset_order)}

    def snapshot_checks(self, snapshot: Mapping[str, Any], seed: bytes | None = None) -> list[str]:
        """Compare a snapshot document with the replayed state; one line per disagreement.

        Replay with `at_size = snapshot["log"]["size"]` when the export is longer than the
        snapshot. With `seed`, the account tree is rebuilt and its root compared.
        """
        return _SnapshotCheck(self, snapshot, seed).run()


def replay(
    lines: Iterable[bytes],
    *,
    progress: Callable[[int], None] | None = None,
    at_size: int | None = None,
    allow_longer: bool = False,
    schema_check: bool = False,
    resume: Replayer | None = None,
) -> ReplayResult:
    """Verify an event stream; return the state, or raise `Discrepancy` at the first error.

    `lines` are the export's lines (bytes, with or without the trailing newline). Each is
    hashed as the RFC 8785 bytes of the event it holds: a line that is not in that form (keys
    reordered, say) verifies if its content is right, and is counted in `non_canonical`.
    `at_size` is the log size of the snapshot the export must match: a line after it is a
    discrepancy, unless `allow_longer` (to check a snapshot of a prefix of a longer export).
    `schema_check` also validates each event against event.schema.json (slow; off by
    default: the replay's own checks cover the schema, and the rare fund_opened and
    policy_set events are always validated against it).
    `resume`: a replayer holding the state after its first `count` events (auditor.state);
    `lines` are then the events from index `count` on, and the replayer keeps its state.
    """
    return (resume or Replayer(schema_check)).run(lines, progress, at_size, allow_longer)


class Replayer:
    """The replay state machine; one handler per event type."""

    def __init__(self, schema_check: bool = False) -> None:
        self.schema_check = schema_check
        self.keep_refs = False  # auditor.state saves the seen ids after the run
        self.log = merkle.CompactRange()
        self.policy_doc: dict[str, Any] | None = None
        self.count = 0
        self.non_canonical: list[int] = []  # 1-based numbers of the first few such lines
        self.non_canonical_count = 0
        self.fund: str | None = None
        self.decimals: dict[str, int] = {}
        self.amount_re: dict[str, re.Pattern[str]] = {}
        self.slot: dict[str, int] = {}
        self.asset_order: list[str] = []
        self.markets: dict[str, str] = {}
        self.balances: dict[str, int] = {}
        self.accounts: dict[str, list[int]] = {}
        self.totals: dict[str, list[int]] = {}
        self.refs = SeenIds()  # bounded memory: spills to a temporary file on long logs
        self.policy: rules.Policy | None = None
        self.policy_hash: str | None = None
        self.prices: dict[str, deque[str]] = {}
        self.metrics: dict[str, tuple[str, str]] = {}
        self.liquidations = 0
        # Derived events still expected from the last liquidation: (type, ref, data).
        self.pending: deque[tuple[str, str, dict[str, Any]]] = deque()
        self.group: dict[str, Any] = {}
        # A large liquidation's head and the counterparties its chunks listed so far.
        self.large: dict[str, Any] | None = None
        self.handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "fund_opened": self._fund_opened,
            "policy_set": self._policy_set,
            "liquidation_settled": self._liquidation,
            "large_liquidation_settled": self._large_head,
            "counterparties_listed": self._unexpected,
            "fee_inflow": self._fee_inflow,
            "deficit_covered": self._unexpected,
            "socialized_loss_assessed": self._unexpected,
            "clawback_charged": self._unexpected,
            "capital_injected": self._capital,
            "capital_withdrawn": self._capital,
            "reserve_rebalanced": self._rebalanced,
            "market_observed": self._observed,
        }

    # ------------------------------------------------------------ driver

    def run(
        self, lines: Iterable[bytes], progress: Callable[[int], None] | None,
        at_size: int | None, allow_longer: bool,
    ) -> ReplayResult:
        # orjson parses a line several times faster than json, and exactly for what a
        # canonical event can hold (RFC 8785 has no integers beyond 2^53); a larger integer
        # comes back as a float, which every integer field's exact type check refuses.
        loads, dumps, sort_keys = orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS
        leaf_hash = merkle.leaf_hash
        log = self.log
        append = log.append
        handlers = self.handlers
        count = self.count
        last_time = None
        stream = iter(lines)
        for line in stream if at_size != count else ():
            body = line[:-1] if line[-1:] == b"\n" else line
            try:
                ev = loads(body)
            except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
                raise Discrepancy(count, f"not valid JSON: {exc}") from None
            # The leaf is over the event's RFC 8785 bytes. Fast path: the line is already
            # its sorted-key serialization (which is RFC 8785 for every valid event).
            append(leaf_hash(body if dumps(ev, option=sort_keys) == body
                             else self._canonical(ev, body, count)))
            self.count = count
            try:
                if type(ev) is not dict:
                    raise _Fail("event is not a JSON object")
                # Every handler reads every field, so a right count means the right fields
                # (a missing one is a KeyError below); the set is compared only to say which.
                if len(ev) != len(_TOP_LEVEL):
                    raise _Fail(rules.fields_error(ev, _TOP_LEVEL, ""))
                index = ev["index"]
                if index != count or type(index) is not int:
                    raise _Fail(f"index: expected {count}, got {clip(index)}")
                typ = ev["type"]
                handler = handlers.get(typ) if type(typ) is str else None
                if handler is None:
                    raise _Fail(f"type: unknown event type {clip(typ)}")
                version = ev["version"]
                if version != EVENT_VERSION or type(version) is not int:
                    raise _Fail(f"version: {clip(version)} is not a version of {typ} "
                                f"(format v1 knows only version {EVENT_VERSION})")
                if ev["time"] != last_time:  # consecutive events often share their time
                    last_time = _check_time(ev["time"])
                data, fields = ev["data"], DATA_FIELDS[typ]
                if type(data) is not dict or len(data) != len(fields):
                    raise _Fail(rules.fields_error(data, fields, "data.")
                                if type(data) is dict else "data: not an object")
                if count < 2 or self.schema_check:
                    self._early_checks(ev, count)
                if ev["fund"] != self.fund and count:
                    raise _Fail(f"fund: expected {clip(self.fund)}, got {clip(ev['fund'])}")
                if self.pending:
                    self._derived(ev)
                elif self.large is not None:
                    self._chunk(ev)
                else:
                    handler(ev)
            except _Fail as exc:
                raise Discrepancy(count, str(exc)) from None
            except KeyError as exc:
                key = exc.args[0]
                where = key if key in _TOP_LEVEL else f"data.{key}"
                raise Discrepancy(count, f"{where}: missing") from None
            except rules.RuleError as exc:
                raise Discrepancy(count, f"data.{exc}") from None
            except (WireError, TypeError, AttributeError) as exc:
                raise Discrepancy(count, f"malformed {ev.get('type', 'event')}: {exc}") from None
            count += 1
            if progress is not None and not count % PROGRESS_EVERY:
                progress(count)
            if count == at_size:
                break
        self.count = count
        if not self.keep_refs:
            self.refs.close()
        if self.large is not None:
            large = self.large
            raise Discrepancy(count, f"log ends before counterparties_listed chunk "
                                     f"{large['chunk']} of {large['chunks']} of the large "
                                     f"liquidation at index {large['index']}")
        if self.pending:
            typ = self.pending[0][0]
            raise Discrepancy(count, f"log ends before the {typ} derived from the liquidation "
                                     f"at index {self.group['index']}")
        if count == at_size and not allow_longer and next(stream, None) is not None:
            raise Discrepancy(count, f"line {count + 1}: the export continues after the "
                                     f"snapshot's log size {at_size}; it must end there")
        if progress is not None:
            progress(count)
        return ReplayResult(
            count=count, log_root=log.root(), fund=self.fund, decimals=dict(self.decimals),
            markets=dict(self.markets), balances=dict(self.balances),
            asset_order=list(self.asset_order), accounts=self.accounts, totals=self.totals,
            policy_version=self.policy.version if self.policy else None,
            policy_hash=self.policy_hash, metrics=dict(self.metrics),
            liquidations=self.liquidations, non_canonical=self.non_canonical_count,
            non_canonical_lines=self.non_canonical,
        )

    def _canonical(self, ev: Any, body: bytes, count: int) -> bytes:
        """The RFC 8785 bytes of a line that is not in that form already (and count it).

        RFC 8785 objects have unique keys; a line repeating one would show readers one
        value and the replay another, so it is refused."""
        def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            keys = [k for k, _ in pairs]
            if len(set(keys)) != len(keys):
                dup = next(k for k in keys if keys.count(k) > 1)
                raise Discrepancy(count, f"line {count + 1}: key {clip(dup)} appears twice")
            return dict(pairs)

        json.loads(body, object_pairs_hook=unique)
        try:
            canon = canonical_bytes(ev)
        except (ValueError, TypeError, OverflowError) as exc:  # e.g. integers beyond 2^53
            raise Discrepancy(count, f"line {count + 1}: no RFC 8785 form ({exc})") from None
        self.non_canonical_count += 1
        if len(self.non_canonical) < NON_CANONICAL_SHOWN:
            self.non_canonical.append(count + 1)
        return canon

    def _early_checks(self, ev: dict[str, Any], count: int) -> None:
        """Position rules (fund_opened at 0, first policy_set at 1) and optional schema."""
        if self.schema_check:
            _schema(ev)
        if count == 0 and ev["type"] != "fund_opened":
            raise _Fail(f"type: the log must start with fund_opened, got {clip(ev['type'])}")
        if count == 1 and ev["type"] != "policy_set":
            raise _Fail(f"type: event 1 must be the first policy_set, got {clip(ev['type'])}")

    # ------------------------------------------------------------ helpers

    def set_assets(self, decimals: dict[str, int]) -> None:
        """The fund's assets and what follows from them (amount forms, account slots)."""
        self.decimals = dict(decimals)
        self.amount_re = {a: re.compile(rf"(?:0|[1-9][0-9]*)\.[0-9]{{{d}}}" if d
                                        else r"0|[1-9][0-9]*") for a, d in decimals.items()}
        self.asset_order = sorted(decimals)
        self.slot = {a: 3 * i for i, a in enumerate(self.asset_order)}

    def _amount(self, data: Mapping[str, Any], key: str, asset: str) -> int:
        """Units of a non-negative amount with exactly the asset's decimals."""
        text = data[key]
        pattern = self.amount_re.get(asset)
        if pattern is None:
            raise _Fail(f"data.asset: {clip(asset)} is not an asset of the fund")
        if type(text) is str and pattern.fullmatch(text):
            return int(text.replace(".", ""))
        try:
            parse_amount(text, self.decimals[asset])
        except WireError as exc:
            raise _Fail(f"data.{key}: {exc}") from None
        raise _Fail(f"data.{key}: amount {clip(text)} is negative")

    def _unique(self, ev: dict[str, Any]) -> None:
        ref = ev["ref"]
        if type(ref) is not str or not 0 < len(ref) <= rules.MAX_ID_LENGTH:
            raise _Fail(f"ref: {clip(ref)} is not an exchange id (1 to {rules.MAX_ID_LENGTH} characters)")
        if not self.refs.add(f"{EXTERNAL_FAMILIES[ev['type']]}\x00{ref}"):
            raise _Fail(f"ref: duplicate exchange id {clip(ref)} for {ev['type']}")

    def _add_balance(self, asset: str, units: int, field_name: str) -> None:
        balance = self.balances[asset] + units
        if balance < 0:
            raise _Fail(f"{field_name}: {asset} balance would go negative "
                        f"({format_amount(balance, self.decimals[asset])})")
        self.balances[asset] = balance

    def _account(self, account: Any, asset: str, kind: int, units: int) -> None:
        if type(account) is not str or not 0 < len(account) <= rules.MAX_ID_LENGTH:
            rules.account_id(account, "account")  # raises, naming the field
        sums = self.accounts.get(account)
        if sums is None:
            sums = self.accounts[account] = [0] * (3 * len(self.asset_order))
        slot = self.slot[asset]
        sums[slot + kind] += units
        self.totals[asset][kind] += units

    # ------------------------------------------------------------ handlers

    def open_fund(self, ev: dict[str, Any], *, only_decimals: bool = False) -> dict[str, Any]:
        """What `fund_opened` of every version checks and sets up: the first event, its
        schema, no ref, the fund's name and its assets (`only_decimals`: an asset's spec holds
        nothing else, as format 2 says). Returns the event's data."""
        if self.fund is not None or ev["index"] != 0:
            raise _Fail("type: fund_opened may only be the first event")
        _schema(ev)  # once per log: every limit of the fund's configuration at once
        if ev["ref"] is not None:
            raise _Fail(f"ref: fund_opened has no exchange id, got {clip(ev['ref'])}")
        data = ev["data"]
        fund = data["fund"]
        if type(fund) is not str or fund != ev["fund"]:
            raise _Fail(f"data.fund: {clip(fund)} does not match fund {clip(ev['fund'])}")
        assets = data["assets"]
        if not isinstance(assets, dict) or not assets:
            raise _Fail("data.assets: must name at least one asset")
        for asset, spec in assets.items():
            d = spec.get("decimals") if isinstance(spec, dict) else None
            if type(d) is not int or not 0 <= d <= 18 or (only_decimals and len(spec) != 1):
                raise _Fail(f"data.assets.{asset}.decimals: {clip(d)} is not an integer in 0..18")
            self.decimals[asset] = d
            self.balances[asset] = 0
        self.set_assets(self.decimals)
        self.totals = {a: [0, 0, 0] for a in self.asset_order}
        return data  # type: ignore[no-any-return]

    def _fund_opened(self, ev: dict[str, Any]) -> None:
        data = self.open_fund(ev)
        markets = data["markets"]
        if not isinstance(markets, dict):
            raise _Fail("data.markets: not an object")
        for market, spec in markets.items():
            quote = spec.get("quote") if isinstance(spec, dict) else None
            if quote not in self.decimals:
                raise _Fail(f"data.markets.{market}.quote: {clip(quote)} is not an asset of the fund")
            self.markets[market] = quote
            self.prices[market] = deque(maxlen=rules.MAX_WINDOW + 1)
        self.fund = data["fund"]

    def checked_policy(self, data: dict[str, Any], doc: Any) -> rules.Policy:
        """The checks `policy_set` of every version makes of its document: the hash, the
        fund-wide rules, a version that increases. Returns the parsed policy."""
        computed = sha256_hex(canonical_bytes(doc))
        if data["policy_hash"] != computed:
            raise _Fail(f"data.policy_hash: expected {computed} (SHA-256 of the policy's "
                        f"RFC 8785 bytes), got {clip(data['policy_hash'])}")
        try:
            policy = rules.parse_policy(doc)
        except rules.RuleError as exc:
            raise _Fail(f"data.{exc}") from None
        version = data["policy_version"]
        if version != policy.version or type(version) is not int:
            raise _Fail(f"data.policy_version: {clip(version)} differs from policy.version {policy.version}")
        if self.policy is not None and version <= self.policy.version:
            raise _Fail(f"data.policy_version: {version} does not increase on {self.policy.version}")
        return policy

    def _policy_set(self, ev: dict[str, Any]) -> None:
        self._unique(ev)
        _schema(ev)  # policies are rare: the whole document against the contract's limits
        data = ev["data"]
        doc = data["policy"]
        policy = self.checked_policy(data, doc)
        for key in ("minimum_reserve", "per_event_cap"):
            for asset in (doc.get(key) or {}):
                if asset not in self.decimals:
                    raise _Fail(f"data.policy.{key}.{asset}: not an asset of the fund")
        try:
            for asset, d in self.decimals.items():
                policy.minimum_reserve_units(asset, d)
                policy.cap_units(asset, d)
        except rules.RuleError as exc:
            raise _Fail(f"data.{exc}") from None
        self.policy = policy
        self.policy_doc = doc
        self.policy_hash = data["policy_hash"]  # checked equal to the hash of doc

    def _large_head(self, ev: dict[str, Any]) -> None:
        """A large liquidation's head: checked and re-derived once its last chunk is read."""
        self._unique(ev)
        data = ev["data"]
        count, digest = data["counterparty_count"], data["counterparties_sha256"]
        if type(count) is not int or not bounds.CHUNK_COUNTERPARTIES < count \
                <= bounds.MAX_COUNTERPARTIES:
            raise _Fail(f"data.counterparty_count: {clip(count)} is not an integer in "
                        f"{bounds.CHUNK_COUNTERPARTIES + 1}..{bounds.MAX_COUNTERPARTIES}")
        if type(digest) is not str or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise _Fail(f"data.counterparties_sha256: {clip(digest)} is not a SHA-256 hex digest")
        self.large = {"index": self.count, "event": ev, "count": count, "chunk": 0,
                      "chunks": bounds.chunk_count(count), "listed": []}

    def _chunk(self, ev: dict[str, Any]) -> None:
        """The next `counterparties_listed` of the large liquidation being read."""
        large = self.large
        assert large is not None  # the loop calls this only then
        head, at, chunk = large["event"], large["index"], large["chunk"]
        where = f"the large liquidation at index {at}"
        if ev["type"] != bounds.CHUNK:
            raise _Fail(f"type: expected counterparties_listed chunk {chunk} of "
                        f"{large['chunks']} of {where}, got {clip(ev['type'])}")
        if ev["ref"] != head["ref"]:
            raise _Fail(f"ref: expected {clip(head['ref'])} (the id of {where}), "
                        f"got {clip(ev['ref'])}")
        if ev["time"] != head["time"]:
            raise _Fail(f"time: expected {clip(head['time'])} (the time of {where}), "
                        f"got {clip(ev['time'])}")
        data = ev["data"]
        if data["chunk"] != chunk or type(data["chunk"]) is not int:
            raise _Fail(f"data.chunk: expected {chunk} (chunks of {where} are numbered in "
                        f"order), got {clip(data['chunk'])}")
        listed, want = data["counterparties"], bounds.chunk_length(large["count"], chunk)
        if type(listed) is not list or len(listed) != want:
            got = len(listed) if type(listed) is list else clip(listed)
            raise _Fail(f"data.counterparties: chunk {chunk} of {where} must list {want} "
                        f"counterparties ({large['count']} in all, "
                        f"{bounds.CHUNK_COUNTERPARTIES} a chunk), got {got}")
        large["listed"].extend(listed)
        large["chunk"] += 1
        if large["chunk"] < large["chunks"]:
            return
        self.large = None
        digest = bounds.counterparties_digest(large["listed"])
        if digest != head["data"]["counterparties_sha256"]:
            raise _Fail(f"data.counterparties: the {large['count']} counterparties listed hash "
                        f"to {digest}, but {where} has counterparties_sha256 "
                        f"{head['data']['counterparties_sha256']}")  # checked: 64 hex digits
        joined = {key: value for key, value in head["data"].items() if key not in _LARGE_ONLY}
        joined["counterparties"] = large["listed"]
        line = bounds.line_length({**head, "type": "liquidation_settled", "data": joined})
        if line <= bounds.MAX_EVENT_LINE:
            raise _Fail(f"type: {where} would be a liquidation_settled line of {line:,} bytes, "
                        f"within the {bounds.MAX_EVENT_LINE:,} of one entry: it must be "
                        "recorded as liquidation_settled (format v1.1)")
        self._settle(head, joined, at)

    def _liquidation(self, ev: dict[str, Any]) -> None:
        self._unique(ev)
        self._settle(ev, ev["data"], self.count)

    def _settle(self, ev: dict[str, Any], data: dict[str, Any], at: int) -> None:
        """Re-derive a liquidation (recorded at index `at`) and expect its derived events."""
        policy = self.policy
        if policy is None:
            raise _Fail("liquidation before any policy_set")
        if data["policy_version"] != policy.version or type(data["policy_version"]) is not int:
            raise _Fail(f"data.policy_version: expected {policy.version} (the active policy), "
                        f"got {clip(data['policy_version'])}")
        market = data["market"]
        quote = self.markets.get(market)
        if quote is None:
            raise _Fail(f"data.market: {clip(market)} is not a market of the fund")
        if data["asset"] != quote:
            raise _Fail(f"data.asset: expected {quote} (the quote asset of {market}), got {clip(data['asset'])}")
        d = self.decimals[quote]
        prices: list[str] = []
        if policy.window is not None:
            history = self.prices[market]
            prices = list(islice(reversed(history), policy.window + 1))[::-1]
        expected = int_rules.settle(data, policy, self.balances[quote], d, prices)
        recorded = data["outcome"]
        # Conservation is implied by equality with the rules; checked on its own all the same.
        error = (rules.outcome_mismatch(expected, recorded, d)
                 or rules.conservation_error(recorded, expected.delta, d))
        if error:
            raise _Fail(f"data.{error}")
        ref = ev["ref"]
        self.pending.extend((typ, ref, payload) for typ, payload in expected.events)
        self.group = {"index": at, "time": ev["time"], "asset": quote, "deficit": expected.deficit,
                      "paid": 0, "socialized": expected.socialized, "clawed": 0,
                      "unresolved": expected.unresolved}
        self.liquidations += 1

    def _derived(self, ev: dict[str, Any]) -> None:
        typ, ref, want = self.pending[0]
        liq = self.group["index"]
        if ev["type"] != typ:
            raise _Fail(f"type: expected {typ} derived from the liquidation at index {liq}, "
                        f"got {clip(ev['type'])}")
        if ev["ref"] != ref:
            raise _Fail(f"ref: expected {clip(ref)} (the liquidation's id), got {clip(ev['ref'])}")
        if ev["time"] != self.group["time"]:
            raise _Fail(f"time: expected {clip(self.group['time'])} (the time of the liquidation at "
                        f"index {liq}, which every derived event shares), got {clip(ev['time'])}")
        data = ev["data"]
        asset = self.group["asset"]
        if data != want:
            error = rules.derived_mismatch(want, data, self.decimals[asset])
            if error:
                raise _Fail(f"{error} (derived from the liquidation at index {liq})")
        self.pending.popleft()
        units = self._amount(data, "amount", asset)
        group = self.group
        if typ == "fee_inflow":
            self._add_balance(asset, units, "data.amount")
            self._account(data["account"], asset, FEES, units)
        elif typ == "deficit_covered":
            self._add_balance(asset, -units, "data.amount")
            self._account(data["account"], asset, PAYOUTS, units)
            group["paid"] += units
        elif typ == "clawback_charged":
            self._account(data["account"], asset, CLAWBACKS, units)
            group["clawed"] += units
        if not self.pending and group["deficit"]:
            # Conservation over the whole liquidation: fund + clawbacks + unresolved == D.
            total = group["paid"] + group["clawed"] + group["unresolved"]
            if total != group["deficit"]:
                raise _Fail(f"conservation: fund payment + clawbacks + unresolved = {total} units, "
                            f"deficit {group['deficit']} units (liquidation at index {liq})")

    def _unexpected(self, ev: dict[str, Any]) -> None:
        raise _Fail(f"type: {ev['type']} without a liquidation that calls for it")

    def _fee_inflow(self, ev: dict[str, Any]) -> None:
        self._unique(ev)
        data = ev["data"]
        kind = data["kind"]
        if kind == "liquidation_fee":
            raise _Fail("data.kind: a liquidation_fee inflow is only ever derived from a "
                        "liquidation (it must follow its liquidation_settled, same ref)")
        if kind not in FEE_KINDS:
            raise _Fail(f"data.kind: {clip(kind)} is not a fee kind")
        asset = data["asset"]
        units = self._amount(data, "amount", asset)
        self.balances[asset] += units
        account = data["account"]
        if account is not None:
            self._account(account, asset, FEES, units)

    def _capital(self, ev: dict[str, Any]) -> None:
        self._unique(ev)
        data = ev["data"]
        if data["source"] not in SOURCES:
            raise _Fail(f"data.source: {clip(data['source'])} is not operator or underwriter")
        asset = data["asset"]
        units = self._amount(data, "amount", asset)
        if ev["type"] == "capital_withdrawn":
            units = -units
        self._add_balance(asset, units, "data.amount")

    def _rebalanced(self, ev: dict[str, Any]) -> None:
        self._unique(ev)
        data = ev["data"]
        src, dst = data["from_asset"], data["to_asset"]
        if src == dst:
            raise _Fail(f"data.to_asset: rebalance from {src} to itself")
        out = self._amount(data, "from_amount", src)
        into = self._amount(data, "to_amount", dst)
        self._add_balance(src, -out, "data.from_amount")
        self.balances[dst] += into

    def _observed(self, ev: dict[str, Any]) -> None:
        self._unique(ev)
        data = ev["data"]
        market = data["market"]
        history = self.prices.get(market)
        if history is None:
            raise _Fail(f"data.market: {clip(market)} is not a market of the fund")
        mark, oi = data["mark_price"], data["open_interest"]
        if type(mark) is not str or not _NON_NEGATIVE.fullmatch(mark) or _ZERO.fullmatch(mark):
            raise _Fail(f"data.mark_price: {clip(mark)} is not a positive decimal string")
        if type(oi) is not str or not _NON_NEGATIVE.fullmatch(oi):
            raise _Fail(f"data.open_interest: {clip(oi)} is not a non-negative decimal string")
        history.append(mark)
        self.metrics[market] = (mark, oi)


def _check_time(time: Any) -> str:
    """`time` if it is an RFC 3339 UTC time of the contract's form and a real instant."""
    if type(time) is str:
        try:
            parse_instant(time)
            return time
        except ValueError:  # not of the form, or February 30, a leap second, hour 24
            pass
    raise _Fail(f"time: {clip(time)} is not a valid time (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)")


def _schema(ev: dict[str, Any]) -> None:
    """Validate one event against event.schema.json (jsonschema: slow, so for rare events)."""
    from auditor.formats.schemas import first_error

    error = first_error("event", ev)
    if error:
        raise _Fail(error)


@dataclass
class _SnapshotCheck:
    """Comparison of one snapshot document with a replay result."""

    result: ReplayResult
    snapshot: Mapping[str, Any]
    seed: bytes | None
    problems: list[str] = field(default_factory=list)

    def run(self) -> list[str]:
        pools = self.snapshot.get("format") == "backstop-snapshot/3"
        for check in (self._log, self._reserves, self._accounts, self._policy,
                      self._pools if pools else self._metrics):
            try:
                check()
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                self.problems.append(f"{check.__name__[1:]}: malformed ({clip(exc)})")
        return self.problems

    def _say(self, where: str, expected: Any, got: Any) -> None:
        self.problems.append(f"{where}: expected {clip(expected)}, got {clip(got)}")

    def _log(self) -> None:
        r, snap = self.result, self.snapshot
        if snap.get("fund") != r.fund:
            self._say("fund", r.fund, snap.get("fund"))
        size = snap["log"]["size"]
        if size != r.count:
            self.problems.append(
                f"log.size: snapshot covers {size} events but {r.count} were replayed"
                + (" (the export is shorter)" if size > r.count else " (replay with at_size)"))
            return
        root = r.log_root.hex()
        if snap["log"]["root"] != root:
            self._say("log.root", root, snap["log"]["root"])
            if r.non_canonical:  # the likeliest suspects: lines someone re-encoded
                self.problems[-1] += (f" (the export's content differs from the signed log; "
                                      f"{r.non_canonical} line(s) were not canonical, first: "
                                      f"{', '.join(map(str, r.non_canonical_lines))})")
            return
        prev = snap.get("previous")
        if prev is not None:
            try:
                merkle.verify_consistency(
                    prev["log_size"], size, [bytes.fromhex(h) for h in prev["consistency"]],
                    bytes.fromhex(prev["log_root"]), r.log_root)
            except merkle.ProofError as exc:
                self.problems.append(f"previous.consistency: {exc}")

    def _reserves(self) -> None:
        r, got = self.result, self.snapshot["reserves"]
        for asset in sorted(set(r.balances) | set(got)):
            if asset not in r.balances:
                self.problems.append(f"reserves.{asset}: not an asset of the fund")
                continue
            want = format_amount(r.balances[asset], r.decimals[asset])
            if got.get(asset) != want:
                self._say(f"reserves.{asset}", want, got.get(asset))

    def _accounts(self) -> None:
        r, acc = self.result, self.snapshot["accounts"]
        if acc["count"] != r.account_count:
            self._say("accounts.count", r.account_count, acc["count"])
        assets = list(acc["assets"])
        if assets != sorted(assets):
            self.problems.append(f"accounts.assets: {assets} is not sorted")
        for asset in r.asset_order:
            if asset not in assets and any(r.totals[asset]):
                self.problems.append(f"accounts.assets: {asset} has account totals but is not listed")
        for asset in assets:
            if asset not in r.totals:
                self.problems.append(f"accounts.assets: {asset} is not an asset of the fund")
                continue
            d = r.decimals[asset]
            got = acc["totals"].get(asset, {})
            for kind, units in zip(("fees", "payouts", "clawbacks"), r.totals[asset], strict=False):
                want = format_amount(units, d)
                if got.get(kind) != want:
                    self._say(f"accounts.totals.{asset}.{kind}", want, got.get(kind))
        if self.seed is not None and all(a in r.totals for a in assets):
            self._account_root(assets)

    def _account_root(self, assets: list[str]) -> None:
        from auditor.verify import sumtree

        r, seed = self.result, self.seed
        assert seed is not None  # the caller checks; a root without a seed cannot be rebuilt
        slots = [r.asset_order.index(a) * 3 for a in assets]

        def entries() -> Iterator[tuple[str, bytes, list[int]]]:
            for account, sums in r.accounts.items():
                vector = [sums[s + k] for s in slots for k in range(3)]
                yield account, sumtree.account_nonce(seed, account), vector

        tree = sumtree.SumTree.build(entries(), width=3 * len(assets))
        if tree.root.hex() != self.snapshot["accounts"]["root"]:
            self._say("accounts.root", tree.root.hex(), self.snapshot["accounts"]["root"])

    def _policy(self) -> None:
        r, pol = self.result, self.snapshot["policy"]
        if pol["version"] != r.policy_version:
            self._say("policy.version", r.policy_version, pol["version"])
        if pol["hash"] != r.policy_hash:
            self._say("policy.hash", r.policy_hash, pol["hash"])

    def _pools(self) -> None:
        """A backstop-snapshot/3: its pools, structure, claims and metrics, member by member
        (auditor.v2_snapshot); only a v2 log publishes one."""
        from auditor.v2_snapshot import compare

        expected = self.result.snapshot3
        if expected is None:
            self.problems.append("format: backstop-snapshot/3 is published for a format v2 log "
                                 "only (this log's event 0 is fund_opened/1)")
            return
        self.problems.extend(compare(expected, self.snapshot))

    def _metrics(self) -> None:
        r, markets = self.result, self.snapshot["metrics"]["markets"]
        for market in sorted(set(r.metrics) | set(markets)):
            where = f"metrics.markets.{market}"
            if market not in r.metrics:
                self.problems.append(f"{where}: no market_observed for it in the log")
                continue
            if market not in markets:
                self.problems.append(f"{where}: missing")
                continue
            got = markets[market]
            mark_s, oi_s = r.metrics[market]
            mark, oi = parse_decimal(mark_s), parse_decimal(oi_s)
            for key, want in (("mark_price", mark), ("open_interest", oi)):
                if parse_decimal(got[key]) != want:
                    self._say(f"{where}.{key}", {"mark_price": mark_s, "open_interest": oi_s}[key], got[key])
            quote = r.markets[market]
            d = r.decimals[quote]
            notional = mark * oi
            recorded = parse_decimal(got["open_interest_notional"])
            # Display rounding of the notional is not pinned: allow less than one quote unit.
            if abs(recorded - notional) * 10**d >= 1:
                self._say(f"{where}.open_interest_notional", str(notional), got["open_interest_notional"])
            if notional == 0 or got.get("fund_to_oi") is None:
                continue
            reserve = Fraction(r.balances[quote], 10**d)
            ratio = parse_decimal(got["fund_to_oi"])
            candidates = {parse_decimal(format_decimal(reserve / n, 12)) for n in (notional, recorded) if n}
            if ratio not in candidates:
                self._say(f"{where}.fund_to_oi", format_decimal(reserve / notional, 12), got["fund_to_oi"])
