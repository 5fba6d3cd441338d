"""How fund events are stored: each as its canonical export line.

The `state` bytes of a stored fund event are exactly the RFC 8785 line that the log tree
commits to and `backstop export` writes (schemas/README.md, "Events"). An event is serialized
once: the leaf hash is of the stored bytes, and the log reads back without re-serializing.
The line holds everything the event object holds (its timestamp is its `time`, see
`ledger.domain.fund.instant`), so decoding it gives an equal event. Snapshots and any other
object go through the library's JSON transcoder as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from eventsourcing.utils import get_topic, register_topic

from ledger.domain.fund import EVENT_CLASSES, Fund, instant
from ledger.domain.poolevents import V2_EVENT_CLASSES, FundOpened2

_BY_TOPIC: dict[str, type[Any]] = {cls.TOPIC: cls for cls in (*EVENT_CLASSES, *V2_EVENT_CLASSES)}
_FUND_TOPIC = get_topic(Fund)
# Snapshots store the aggregate's class path as their topic; databases written before the
# aggregate moved to ledger/domain/fund.py name it "ledger.domain:Fund" (and "...:Fund.Snapshot").
register_topic("ledger.domain:Fund", Fund)


def stored_fund_events(fund_id: UUID, events: Sequence[Any],
                       lines: Sequence[bytes]) -> list[StoredEvent]:
    """Stored form of a fund's new events, given their canonical export lines (the lines
    carry the fund's name, which the event objects do not know)."""
    return [StoredEvent(originator_id=fund_id, originator_version=event.originator_version,
                        topic=type(event).TOPIC, state=line)
            for event, line in zip(events, lines, strict=True)]


class FundMapper(Mapper[UUID]):
    """The library's mapper, except that fund events are stored as export lines."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if isinstance(domain_event, Fund.Event):
            raise TypeError("fund events are stored by Ledger.record (see stored_fund_events)")
        return super().to_stored_event(domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls = _BY_TOPIC.get(stored_event.topic)
        if cls is None:
            return super().to_domain_event(stored_event)
        version = stored_event.originator_version
        try:
            line = orjson.loads(stored_event.state)
            if line["index"] != version - 1:
                raise ValueError(f"index {line['index']} is not version {version} - 1")
            state = {"originator_id": stored_event.originator_id, "originator_version": version,
                     "timestamp": instant(line["time"]), "time": line["time"],
                     "ref": line["ref"], "data": line["data"]}
        except (ValueError, KeyError, TypeError) as error:
            hint = (" (not an export line: was this database written by a Backstop before "
                    "events were stored as export lines? export it with that version and "
                    "import the export here)") if isinstance(error, KeyError) else ""
            raise MapperDeserialisationError(
                f"stored fund event {stored_event.originator_id} version {version}: "
                f"{error!r}{hint}") from error
        if cls is Fund.Created or cls is FundOpened2:
            state["originator_topic"] = _FUND_TOPIC
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)  # as the library's own mapper does
        return event
