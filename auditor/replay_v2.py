"""Streaming verification of a format v2 log (opened by `fund_opened/2`): pools, market
assignments, transfers, claim caps, the per-pool waterfall with its backstop draw, inverse
markets and the ADL trigger, all re-derived from the log (schemas/README.md "Format v2
(pools)", docs/FORMAT-V2-DRAFT.md sections 1-4, 6, 7, 13).

`auditor.replays.replay` dispatches here once, on event 0's version, so the v1 loop
(auditor.replay) and its per-event path stay exactly as they were. The v1 helpers (amounts, ids, accounts, large
liquidations, observations) are inherited from `Replayer`; the structure checks are in
`auditor.v2_structure` (policy/2: `auditor.v2_policy`), the liquidation in `auditor.v2_settle`, the trigger's bookkeeping in
`auditor.v2_adl`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from auditor import rules
from auditor.formats.clip import clip
from auditor.formats.wire import WireError, format_amount, parse_instant
from auditor.replay import (
    _TOP_LEVEL,
    CLAWBACKS,
    FEES,
    PAYOUTS,
    PROGRESS_EVERY,
    Discrepancy,
    Replayer,
    ReplayResult,
    _Fail,
)
from auditor.v2_adl import AdlBook
from auditor.v2_settle import settle_v2
from auditor.v2_snapshot import expected_members
from auditor.v2_structure import (
    OTHER_TYPES,
    V2_DATA_FIELDS,
    V2_FAMILIES,
    V2_VERSIONS,
    Structure,
)
from auditor.v2_value import ValueBook

__all__ = ["V2Replayer"]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def micros(time: Any) -> int:
    """tau(time) in microseconds (exact), or the v1 failure for a time that is not one."""
    if type(time) is str:
        try:
            return (parse_instant(time) - _EPOCH) // _MICRO
        except ValueError:  # not of the form, or February 30, a leap second, hour 24
            pass
    raise _Fail(f"time: {clip(time)} is not a valid time (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)")


class V2Replayer(Replayer):
    """The replay state machine of a v2 log: per-pool balances, claims, the ADL states."""

    def __init__(self, schema_check: bool = False) -> None:
        super().__init__(schema_check)
        self.structure = Structure(self)
        self.adl = AdlBook(self)
        self.value = ValueBook(self)
        self.times: list[str] = []  # every event's time, by index (the ADL windows)
        self.micros: list[int] = []  # and its tau in microseconds (exact: 6 digits at most)
        self.fact: tuple[Any, str] | None = None  # (ref, time) of the fact being read
        s = self.structure
        self.handlers = {
            "fund_opened": s.fund_opened,
            "policy_set": s.policy_set,
            "pool_created": s.pool_created,
            "market_assigned": s.market_assigned,
            "capital_transferred": s.transferred,
            "claim_cap_set": s.claim_cap,
            "capital_injected": s.capital,
            "capital_withdrawn": s.capital,
            "fee_inflow": s.fee_inflow,
            "market_observed": self._observed,
            "liquidation_settled": self._liquidation,
            "large_liquidation_settled": self._large_head,
            "counterparties_listed": self._unexpected,
            "deficit_covered": self._unexpected,
            "backstop_drawn": self._unexpected,
            "socialized_loss_assessed": self._unexpected,
            "clawback_charged": self._unexpected,
            "adl_started": self.adl.event,
            "adl_ended": self.adl.event,
            "asset_priced": self.value.priced,
            "asset_converted": self.value.converted,
        }

    # ------------------------------------------------------------ driver

    def run(
        self, lines: Iterable[bytes], progress: Callable[[int], None] | None,
        at_size: int | None, allow_longer: bool,
    ) -> ReplayResult:
        loads, dumps, sort_keys = orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS
        from auditor.verify import merkle

        leaf_hash = merkle.leaf_hash
        append = self.log.append
        handlers = self.handlers
        count = self.count
        last_time = ""  # no event time is empty: the first one is always checked
        last_micros = -(1 << 62)  # before any time
        stream = iter(lines)
        for line in stream if at_size != count else ():
            body = line[:-1] if line[-1:] == b"\n" else line
            try:
                ev = loads(body)
            except ValueError as exc:
                raise Discrepancy(count, f"not valid JSON: {exc}") from None
            append(leaf_hash(body if dumps(ev, option=sort_keys) == body
                             else self._canonical(ev, body, count)))
            self.count = count
            try:
                if type(ev) is not dict:
                    raise _Fail("event is not a JSON object")
                if len(ev) != len(_TOP_LEVEL):
                    raise _Fail(rules.fields_error(ev, _TOP_LEVEL, ""))
                index = ev["index"]
                if index != count or type(index) is not int:
                    raise _Fail(f"index: expected {count}, got {clip(index)}")
                typ = ev["type"]
                handler = handlers.get(typ) if type(typ) is str else None
                version = ev["version"]
                if handler is None:
                    if typ in OTHER_TYPES:  # a type of v1 or of a later v2 session
                        raise _Fail(f"version: {clip(version)} is not a version of {typ} in a "
                                    "v2 region")
                    raise _Fail(f"type: unknown event type {clip(typ)}")
                if type(version) is not int or V2_VERSIONS[typ] != version:
                    raise _Fail(f"version: {clip(version)} is not a version of {typ} in a v2 region")
                time = ev["time"]
                if time != last_time:
                    now = micros(time)
                    if now < last_micros:
                        raise _Fail(f"time: earlier than event {count - 1}")
                    last_time, last_micros = time, now
                self.times.append(last_time)  # shared with the events before of that time
                self.micros.append(last_micros)
                data, fields = ev["data"], V2_DATA_FIELDS[typ]
                if type(data) is not dict or len(data) != len(fields):
                    raise _Fail(rules.fields_error(data, fields, "data.")
                                if type(data) is dict else "data: not an object")
                if data.keys() != fields:
                    raise _Fail(rules.fields_error(data, fields, "data."))
                if count < 2 or self.schema_check:
                    self._early_checks(ev, count)
                if ev["fund"] != self.fund and count:
                    raise _Fail(f"fund: expected {clip(self.fund)}, got {clip(ev['fund'])}")
                self._dispatch(ev, handler)
            except _Fail as exc:
                raise Discrepancy(count, str(exc)) from None
            except KeyError as exc:
                key = exc.args[0]
                where = key if key in _TOP_LEVEL else f"data.{key}"
                raise Discrepancy(count, f"{where}: missing") from None
            except rules.RuleError as exc:
                raise Discrepancy(count, f"data.{exc}") from None
            except (WireError, TypeError, AttributeError, ValueError, ZeroDivisionError) as exc:
                raise Discrepancy(count, f"malformed {ev.get('type', 'event')}: {exc}") from None
            count += 1
            if progress is not None and not count % PROGRESS_EVERY:
                progress(count)
            if count == at_size:
                break
        self.count = count
        self.refs.close()
        self._finish(count, at_size, allow_longer, stream)
        if progress is not None:
            progress(count)
        result = ReplayResult(
            count=count, log_root=self.log.root(), fund=self.fund, decimals=dict(self.decimals),
            markets=dict(self.markets), balances=dict(self.balances),
            asset_order=list(self.asset_order), accounts=self.accounts, totals=self.totals,
            policy_version=self.policy.version if self.policy else None,
            policy_hash=self.policy_hash, metrics=dict(self.metrics),
            liquidations=self.liquidations, non_canonical=self.non_canonical_count,
            non_canonical_lines=self.non_canonical,
        )
        result.format = 2
        result.pools = {p: dict(b) for p, b in self.structure.pools.items()}
        result.market_pools = dict(self.structure.market_pool)
        result.adl_pools = sorted(p for p, on in self.adl.in_adl.items() if on)
        result.value_book = self.value  # valuation currency, terms, price book (snapshot /3)
        result.snapshot3 = expected_members(self)
        return result

    def _finish(self, count: int, at_size: int | None, allow_longer: bool,
                stream: Iterable[bytes]) -> None:
        """What the log still owes at its end: chunks, derived events, ADL events."""
        if self.large is not None:
            large = self.large
            raise Discrepancy(count, f"log ends before counterparties_listed chunk "
                                     f"{large['chunk']} of {large['chunks']} of the large "
                                     f"liquidation at index {large['index']}")
        if self.pending:
            typ = self.pending[0][0]
            raise Discrepancy(count, f"log ends before the {typ} derived from the liquidation "
                                     f"at index {self.group['index']}")
        if self.adl.pending:
            raise Discrepancy(count, self.adl.missing(self.adl.pending[0]))
        if count == at_size and not allow_longer and next(iter(stream), None) is not None:
            raise Discrepancy(count, f"line {count + 1}: the export continues after the "
                                     f"snapshot's log size {at_size}; it must end there")

    def _dispatch(self, ev: dict[str, Any], handler: Callable[[dict[str, Any]], None]) -> None:
        """One event: a derived one the last fact owes, a chunk, an ADL event, or a fact."""
        typ = ev["type"]
        if self.pending:
            self._derived(ev)
            if not self.pending:
                self._fact_done()
            return
        if self.large is not None:
            self._chunk(ev)
            if self.large is None and not self.pending:
                self._fact_done()
            return
        if self.adl.pending and typ not in ("adl_started", "adl_ended"):
            raise _Fail(self.adl.missing(self.adl.pending[0]))
        if typ in ("adl_started", "adl_ended"):
            handler(ev)
            return
        self.fact = (ev["ref"], ev["time"])
        handler(ev)
        if not self.pending and self.large is None:
            self._fact_done()

    def _fact_done(self) -> None:
        """Every event of the fact is in: the trigger is evaluated (its events come next)."""
        self.adl.evaluate(self.count)

    # ------------------------------------------------------------ helpers

    def _unique(self, ev: dict[str, Any]) -> None:
        ref = ev["ref"]
        if type(ref) is not str or not 0 < len(ref) <= rules.MAX_ID_LENGTH:
            raise _Fail(f"ref: {clip(ref)} is not an exchange id (1 to {rules.MAX_ID_LENGTH} characters)")
        if not self.refs.add(f"{V2_FAMILIES[ev['type']]}\x00{ref}"):
            raise _Fail(f"ref: duplicate exchange id {clip(ref)} for {ev['type']}")

    def move(self, pool: str, asset: str, units: int, where: str) -> None:
        """Add `units` (signed) to `pool`'s balance of `asset`; no pool goes below zero."""
        balances = self.structure.pools.get(pool)
        if balances is None:
            raise _Fail(f"{where}: unknown pool {clip(pool)}")
        if asset not in balances:
            raise _Fail(f"data.asset: {clip(asset)} is not an asset of the fund")
        balance = balances[asset] + units
        if balance < 0:
            raise _Fail(f"data.amount: takes pool {pool} below zero in {asset} (balance "
                        f"{format_amount(balances[asset], self.decimals[asset])}, amount "
                        f"{format_amount(abs(units), self.decimals[asset])})")
        balances[asset] = balance
        self.balances[asset] += units
        self.adl.changed(pool, asset, self.count, balance)

    def amount(self, data: dict[str, Any], key: str, asset: str) -> int:
        """Units of a non-negative amount of `asset` with exactly its decimals."""
        return self._amount(data, key, asset)

    def account(self, account: Any, asset: str, kind: int, units: int) -> None:
        """Add to an account's per-asset totals (fees, payouts or clawbacks)."""
        self._account(account, asset, kind, units)

    # ------------------------------------------------------------ liquidations

    def _settle(self, ev: dict[str, Any], data: dict[str, Any], at: int) -> None:
        """Re-derive a liquidation/2 (recorded at index `at`) and expect its derived events."""
        events, group = settle_v2(self, ev, data, at)
        ref = ev["ref"]
        self.pending = deque((typ, ref, payload) for typ, payload in events)
        self.group = group
        self.liquidations += 1

    def _derived(self, ev: dict[str, Any]) -> None:
        typ, ref, want = self.pending[0]
        group = self.group
        liq = group["index"]
        if ev["type"] != typ:
            if ev["type"] == "backstop_drawn":
                raise _Fail(f"backstop_drawn: not called for by the liquidation at index {liq} "
                            f"(its outcome has backstop_payment 0; expected {typ})")
            raise _Fail(f"type: expected {typ} derived from the liquidation at index {liq}, "
                        f"got {clip(ev['type'])}")
        if ev["ref"] != ref:
            raise _Fail(f"ref: expected {clip(ref)} (the liquidation's id), got {clip(ev['ref'])}")
        if ev["time"] != group["time"]:
            raise _Fail(f"time: expected {clip(group['time'])} (the time of the liquidation at "
                        f"index {liq}, which every derived event shares), got {clip(ev['time'])}")
        data = ev["data"]
        asset = group["asset"]
        if data != want:
            error = rules.derived_mismatch(want, data, self.decimals[asset])
            if error:
                raise _Fail(f"{error} (derived from the liquidation at index {liq})")
        self.pending.popleft()
        units = self._amount(data, "amount", asset)
        market = group["market"]
        if typ == "fee_inflow":
            self.move(data["pool"], asset, units, "data.pool")
            self._account(data["account"], asset, FEES, units)
        elif typ in ("deficit_covered", "backstop_drawn"):
            self.move(data["pool"], asset, -units, "data.pool")
            self._account(data["account"], asset, PAYOUTS, units)
            self.structure.claims[market].append((self.count, ev["time"], units))
            group["paid"] += units
        elif typ == "clawback_charged":
            self._account(data["account"], asset, CLAWBACKS, units)
            group["clawed"] += units
        if not self.pending and group["deficit"]:
            total = group["paid"] + group["clawed"] + group["unresolved"]
            if total != group["deficit"]:
                raise _Fail(f"conservation: fund payment + backstop + clawbacks + unresolved = "
                            f"{total} units, deficit {group['deficit']} units (liquidation at "
                            f"index {liq})")
