"""Streaming verification of an exported event log (`events.jsonl`).

One pass, one line at a time: the log's Merkle root (O(log n) memory), the fund's balances,
per-account totals, exchange-id uniqueness, the active policy, and every liquidation's
outcome and derived events re-derived with `auditor.rules`. The first wrong fact stops the
replay with a `Discrepancy` naming the log index, the field and both values.

The per-event path avoids jsonschema and Fractions (only liquidations use rationals), so a
million events cost a small multiple of reading, parsing and hashing them.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import islice
from typing import Any

import orjson

from auditor import merkle, rules
from auditor.seen import SeenIds
from auditor.wire import (
    WireError,
    canonical_bytes,
    format_amount,
    format_decimal,
    parse_amount,
    parse_decimal,
    sha256_hex,
)

__all__ = ["DERIVED_TYPES", "EXTERNAL_FAMILIES", "Discrepancy", "ReplayResult", "replay"]

# Exchange ids are unique per fact type; event types map onto the fact that caused them.
EXTERNAL_FAMILIES = {
    "liquidation_settled": "liquidation",
    "fee_inflow": "fee",          # only fee inflows that are not derived from a liquidation
    "capital_injected": "capital",
    "capital_withdrawn": "capital",
    "reserve_rebalanced": "rebalance",
    "market_observed": "observation",
    "policy_set": "policy",
}
DERIVED_TYPES = ("fee_inflow", "deficit_covered", "socialized_loss_assessed", "clawback_charged")
FEE_KINDS = frozenset({"trading_fee_share", "liquidation_fee", "other"})
SOURCES = frozenset({"operator", "underwriter"})
FEES, PAYOUTS, CLAWBACKS = 0, 1, 2  # slots of an account's per-asset totals
PROGRESS_EVERY = 1 << 16
_NON_NEGATIVE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_ZERO = re.compile(r"0(?:\.0+)?")
_TOP_LEVEL = frozenset({"index", "type", "version", "fund", "time", "ref", "data"})


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
    max_window: int = 4096,
    schema_check: bool = False,
) -> ReplayResult:
    """Verify an event stream; return the state, or raise `Discrepancy` at the first error.

    `lines` are the export's lines (bytes, with or without the trailing newline).
    `at_size` stops after that many events (to check a snapshot of a prefix).
    `max_window` bounds the mark-price history kept per market (the largest volatility
    window the auditor can evaluate). `schema_check` also validates each event against
    event.schema.json (slow; off by default).
    """
    return _Replayer(max_window, schema_check).run(lines, progress, at_size)


class _Replayer:
    """The replay state machine; one handler per event type."""

    def __init__(self, max_window: int, schema_check: bool) -> None:
        self.max_window = max_window
        self.schema_check = schema_check
        self.count = 0
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
        self.handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "fund_opened": self._fund_opened,
            "policy_set": self._policy_set,
            "liquidation_settled": self._liquidation,
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
        self, lines: Iterable[bytes], progress: Callable[[int], None] | None, at_size: int | None
    ) -> ReplayResult:
        # orjson parses a line several times faster than json, and exactly for what a
        # canonical event can hold (RFC 8785 has no integers beyond 2^53); a larger integer
        # comes back as a float, which every integer field's exact type check refuses.
        loads = orjson.loads
        leaf_hash = merkle.leaf_hash
        log = merkle.CompactRange()
        append = log.append
        handlers = self.handlers
        count = 0
        if at_size == 0:
            lines = ()
        for line in lines:
            body = line[:-1] if line[-1:] == b"\n" else line
            try:
                ev = loads(body)
            except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
                raise Discrepancy(count, f"not valid JSON: {exc}") from None
            append(leaf_hash(body))
            self.count = count
            try:
                if type(ev) is not dict:
                    raise _Fail("event is not a JSON object")
                index = ev["index"]
                if index != count or type(index) is not int:
                    raise _Fail(f"index: expected {count}, got {index!r}")
                if count < 2 or self.schema_check:
                    self._early_checks(ev, count)
                if ev["fund"] != self.fund and count:
                    raise _Fail(f"fund: expected {self.fund!r}, got {ev['fund']!r}")
                if self.pending:
                    self._derived(ev)
                else:
                    handler = handlers.get(ev["type"])
                    if handler is None:
                        raise _Fail(f"type: unknown event type {ev['type']!r}")
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
        self.refs.close()
        if self.pending:
            typ = self.pending[0][0]
            raise Discrepancy(count, f"log ends before the {typ} derived from the liquidation "
                                     f"at index {self.group['index']}")
        if progress is not None:
            progress(count)
        return ReplayResult(
            count=count, log_root=log.root(), fund=self.fund, decimals=dict(self.decimals),
            markets=dict(self.markets), balances=dict(self.balances),
            asset_order=list(self.asset_order), accounts=self.accounts, totals=self.totals,
            policy_version=self.policy.version if self.policy else None,
            policy_hash=self.policy_hash, metrics=dict(self.metrics),
            liquidations=self.liquidations,
        )

    def _early_checks(self, ev: dict[str, Any], count: int) -> None:
        """Position rules (fund_opened at 0, first policy_set at 1) and optional schema."""
        if self.schema_check:
            from auditor.schemas import first_error

            error = first_error("event", ev)
            if error:
                raise _Fail(error)
        if count == 0 and ev["type"] != "fund_opened":
            raise _Fail(f"type: the log must start with fund_opened, got {ev['type']!r}")
        if count == 1 and ev["type"] != "policy_set":
            raise _Fail(f"type: event 1 must be the first policy_set, got {ev['type']!r}")

    # ------------------------------------------------------------ helpers

    def _amount(self, data: Mapping[str, Any], key: str, asset: str) -> int:
        """Units of a non-negative amount with exactly the asset's decimals."""
        text = data[key]
        pattern = self.amount_re.get(asset)
        if pattern is None:
            raise _Fail(f"data.asset: {asset!r} is not an asset of the fund")
        if type(text) is str and pattern.fullmatch(text):
            return int(text.replace(".", ""))
        try:
            parse_amount(text, self.decimals[asset])
        except WireError as exc:
            raise _Fail(f"data.{key}: {exc}") from None
        raise _Fail(f"data.{key}: amount {text!r} is negative")

    def _unique(self, ev: dict[str, Any]) -> None:
        ref = ev["ref"]
        if type(ref) is not str or not ref:
            raise _Fail(f"ref: {ref!r} is not an exchange id")
        if not self.refs.add(f"{EXTERNAL_FAMILIES[ev['type']]}\x00{ref}"):
            raise _Fail(f"ref: duplicate exchange id {ref!r} for {ev['type']}")

    def _add_balance(self, asset: str, units: int, field_name: str) -> None:
        balance = self.balances[asset] + units
        if balance < 0:
            raise _Fail(f"{field_name}: {asset} balance would go negative "
                        f"({format_amount(balance, self.decimals[asset])})")
        self.balances[asset] = balance

    def _account(self, account: Any, asset: str, kind: int, units: int) -> None:
        if type(account) is not str or not account:
            raise _Fail(f"data.account: {account!r} is not an account id")
        sums = self.accounts.get(account)
        if sums is None:
            sums = self.accounts[account] = [0] * (3 * len(self.asset_order))
        slot = self.slot[asset]
        sums[slot + kind] += units
        self.totals[asset][kind] += units

    # ------------------------------------------------------------ handlers

    def _fund_opened(self, ev: dict[str, Any]) -> None:
        if self.fund is not None or ev["index"] != 0:
            raise _Fail("type: fund_opened may only be the first event")
        if ev["ref"] is not None:
            raise _Fail(f"ref: fund_opened has no exchange id, got {ev['ref']!r}")
        data = ev["data"]
        fund = data["fund"]
        if type(fund) is not str or fund != ev["fund"]:
            raise _Fail(f"data.fund: {fund!r} does not match fund {ev['fund']!r}")
        assets = data["assets"]
        if not isinstance(assets, dict) or not assets:
            raise _Fail("data.assets: must name at least one asset")
        for asset, spec in assets.items():
            d = spec.get("decimals") if isinstance(spec, dict) else None
            if type(d) is not int or not 0 <= d <= 18:
                raise _Fail(f"data.assets.{asset}.decimals: {d!r} is not an integer in 0..18")
            self.decimals[asset] = d
            self.amount_re[asset] = re.compile(
                rf"(?:0|[1-9][0-9]*)\.[0-9]{{{d}}}" if d else r"0|[1-9][0-9]*")
            self.balances[asset] = 0
        self.asset_order = sorted(self.decimals)
        self.slot = {a: 3 * i for i, a in enumerate(self.asset_order)}
        self.totals = {a: [0, 0, 0] for a in self.asset_order}
        markets = data["markets"]
        if not isinstance(markets, dict):
            raise _Fail("data.markets: not an object")
        for market, spec in markets.items():
            quote = spec.get("quote") if isinstance(spec, dict) else None
            if quote not in self.decimals:
                raise _Fail(f"data.markets.{market}.quote: {quote!r} is not an asset of the fund")
            self.markets[market] = quote
            self.prices[market] = deque(maxlen=self.max_window + 1)
        self.fund = fund

    def _policy_set(self, ev: dict[str, Any]) -> None:
        self._unique(ev)
        data = ev["data"]
        doc = data["policy"]
        computed = sha256_hex(canonical_bytes(doc))
        if data["policy_hash"] != computed:
            raise _Fail(f"data.policy_hash: expected {computed} (SHA-256 of the policy's "
                        f"RFC 8785 bytes), got {data['policy_hash']!r}")
        try:
            policy = rules.parse_policy(doc)
        except rules.RuleError as exc:
            raise _Fail(f"data.{exc}") from None
        version = data["policy_version"]
        if version != policy.version or type(version) is not int:
            raise _Fail(f"data.policy_version: {version!r} differs from policy.version {policy.version}")
        if self.policy is not None and version <= self.policy.version:
            raise _Fail(f"data.policy_version: {version} does not increase on {self.policy.version}")
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
        if policy.window is not None and policy.window > self.max_window:
            raise ValueError(f"event {self.count}: policy window {policy.window} exceeds the "
                             f"auditor's max_window {self.max_window}; replay with a larger one")
        self.policy = policy
        self.policy_hash = computed

    def _liquidation(self, ev: dict[str, Any]) -> None:
        self._unique(ev)
        data = ev["data"]
        policy = self.policy
        if policy is None:
            raise _Fail("liquidation before any policy_set")
        if data["policy_version"] != policy.version:
            raise _Fail(f"data.policy_version: expected {policy.version} (the active policy), "
                        f"got {data['policy_version']!r}")
        market = data["market"]
        quote = self.markets.get(market)
        if quote is None:
            raise _Fail(f"data.market: {market!r} is not a market of the fund")
        if data["asset"] != quote:
            raise _Fail(f"data.asset: expected {quote} (the quote asset of {market}), got {data['asset']!r}")
        d = self.decimals[quote]
        prices: list[str] = []
        if policy.window is not None:
            history = self.prices[market]
            prices = list(islice(reversed(history), policy.window + 1))[::-1]
        expected = rules.settle(data, policy, self.balances[quote], d, prices)
        recorded = data["outcome"]
        error = rules.outcome_mismatch(expected, recorded, d)
        if error is None and recorded != expected.outcome:
            # Equal to the rules only up to display formatting: check conservation on it too.
            error = rules.conservation_error(recorded, expected.delta, d)
        if error:
            raise _Fail(f"data.{error}")
        ref = ev["ref"]
        self.pending.extend((typ, ref, payload) for typ, payload in expected.events)
        self.group = {"index": self.count, "asset": quote, "deficit": expected.deficit,
                      "paid": 0, "socialized": expected.socialized, "clawed": 0,
                      "unresolved": expected.unresolved}
        self.liquidations += 1

    def _derived(self, ev: dict[str, Any]) -> None:
        typ, ref, want = self.pending[0]
        liq = self.group["index"]
        if ev["type"] != typ:
            raise _Fail(f"type: expected {typ} derived from the liquidation at index {liq}, "
                        f"got {ev['type']!r}")
        if ev["ref"] != ref:
            raise _Fail(f"ref: expected {ref!r} (the liquidation's id), got {ev['ref']!r}")
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
        if data["kind"] not in FEE_KINDS:
            raise _Fail(f"data.kind: {data['kind']!r} is not a fee kind")
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
            raise _Fail(f"data.source: {data['source']!r} is not operator or underwriter")
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
            raise _Fail(f"data.market: {market!r} is not a market of the fund")
        mark, oi = data["mark_price"], data["open_interest"]
        if type(mark) is not str or not _NON_NEGATIVE.fullmatch(mark) or _ZERO.fullmatch(mark):
            raise _Fail(f"data.mark_price: {mark!r} is not a positive decimal string")
        if type(oi) is not str or not _NON_NEGATIVE.fullmatch(oi):
            raise _Fail(f"data.open_interest: {oi!r} is not a non-negative decimal string")
        history.append(mark)
        self.metrics[market] = (mark, oi)


@dataclass
class _SnapshotCheck:
    """Comparison of one snapshot document with a replay result."""

    result: ReplayResult
    snapshot: Mapping[str, Any]
    seed: bytes | None
    problems: list[str] = field(default_factory=list)

    def run(self) -> list[str]:
        for check in (self._log, self._reserves, self._accounts, self._policy, self._metrics):
            try:
                check()
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                self.problems.append(f"{check.__name__[1:]}: malformed ({exc!r})")
        return self.problems

    def _say(self, where: str, expected: Any, got: Any) -> None:
        self.problems.append(f"{where}: expected {expected!r}, got {got!r}")

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
        from auditor import sumtree

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
