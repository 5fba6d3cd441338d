"""Hostile and broken input at the door: one line naming the line and field, exit code 2,
nothing written (issue 11, items 2, 6 and 7), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli.main import main
from tests.factories import (
    TIME,
    capital,
    crash_records,
    fee,
    fund_config,
    liquidation,
    policy,
    write_jsonl,
)
from tests.importing import database_rows, fund_db, refused, run  # noqa: F401 (fund_db: a fixture)

UNITS_2_127 = "1701411834604692317316873037158841057.28"  # 2^127 minor units, 2 decimals
UNITS_2_128 = "3402823669209384634633746074317682114.56"


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


# -- item 2: amounts and the totals they feed must fit the commitments' 128 bits -------------

# 64 characters: the longest decimal string the contract allows (auditor/formats/bounds.py).
@pytest.mark.parametrize(("amount", "bits"), [("1" + "0" * 63, 216), (UNITS_2_128, 129)])
def test_an_amount_beyond_128_bits_is_refused_naming_amount(fund_db: str, tmp_path: Path,
                                                            amount: str, bits: int) -> None:
    path = write_jsonl(tmp_path / "big.jsonl", [fee("f1", "1.00"), fee("f2", amount)])
    message = refused(fund_db, path)
    assert message.startswith("line 2: amount: '")
    assert message.endswith(f"USDT is {bits} bits of minor units, beyond the 128 bits "
                            "snapshots commit to")


def test_the_largest_128_bit_amount_is_accepted(fund_db: str, tmp_path: Path) -> None:
    largest = "3402823669209384634633746074317682114.55"  # 2^128 - 1 units
    result = run(["import", str(write_jsonl(tmp_path / "max.jsonl", [fee("f1", largest)]))],
                 fund_db)
    assert result.exit_code == 0, result.output
    doc = json.loads(run(["account", "carol", "--json"], fund_db).output)
    assert doc["assets"]["USDT"]["fees"] == largest


def test_totals_crossing_128_bits_are_refused_at_the_crossing_fact_and_publish_works(
        fund_db: str, tmp_path: Path) -> None:
    # Fees of two accounts: each fits, their sum (the account tree's root) is 2^128 units;
    # the withdrawal keeps the fund balance itself in range.
    fees = write_jsonl(tmp_path / "fees.jsonl", [
        fee("f1", UNITS_2_127, account="x"), capital("w1", UNITS_2_127, "withdraw"),
        fee("f2", UNITS_2_127, account="y")])
    assert refused(fund_db, fees) == (
        f"line 3: amount: adding {UNITS_2_127} USDT would take the fees of all accounts "
        f"({UNITS_2_127}) beyond the 128 bits snapshots commit to")
    # The fund balance: an injection, then a fee of no account.
    balance = write_jsonl(tmp_path / "balance.jsonl", [
        capital("c1", UNITS_2_127), fee("f3", "0.01", account=None),
        fee("f4", UNITS_2_127, account=None)])
    assert refused(fund_db, balance) == (
        f"line 3: amount: adding {UNITS_2_127} USDT would take the fund balance "
        "(1701411834604692317316873037158841057.29) beyond the 128 bits snapshots commit to")
    # Committed one fact at a time, the same facts stop at the same place.
    for number, record in enumerate([capital("c1", UNITS_2_127), fee("f3", "0.01", None)]):
        path = write_jsonl(tmp_path / f"ok{number}.jsonl", [record])
        assert run(["import", str(path)], fund_db).exit_code == 0
    assert refused(fund_db, write_jsonl(tmp_path / "last.jsonl", [
        fee("f4", UNITS_2_127, account=None)])).startswith("line 1: amount: adding ")
    key = tmp_path / "op.key"
    assert CliRunner().invoke(main, ["keygen", "ops.example/fund", "--out", str(key)]) \
        .exit_code == 0
    published = run(["snapshot", "publish", "--key", str(key), "--out", str(tmp_path / "p")],
                    fund_db)
    assert published.exit_code == 0, published.output
    snapshot = json.loads((tmp_path / "p" / "snapshot.json").read_text())
    assert snapshot["reserves"] == {"USDT": "1701411834604692317316873037158841057.29"}


def test_a_liquidation_whose_outcome_leaves_128_bits_is_refused_naming_size(
        fund_db: str, tmp_path: Path) -> None:
    # Surplus 10^41 - 3900 * 10^36 USDT; fee = 0.5% of 56100 * 10^36 = 2.805 * 10^38 USDT,
    # 2.805 * 10^40 units: 135 bits.
    one = write_jsonl(tmp_path / "one.jsonl", [
        liquidation("L1", "56100", size="1" + "0" * 36, collateral="1" + "0" * 41)])
    assert refused(fund_db, one) == ("line 1: size: the settlement's fee (135 bits of minor "
                                     "units) is beyond the 128 bits snapshots commit to")
    # Fees of 2.805 * 10^36 USDT each: one fits (2.805 * 10^38 units), two do not.
    fee_each = "2805" + "0" * 33 + ".00"
    two = write_jsonl(tmp_path / "two.jsonl", [
        liquidation(f"L{n}", "56100", size="1" + "0" * 34, collateral="1" + "0" * 39)
        for n in (2, 3)])
    assert refused(fund_db, two) == (
        f"line 2: size: adding {fee_each} USDT would take the fund balance ({fee_each}) "
        "beyond the 128 bits snapshots commit to")


# -- item 6: malformed import lines ---------------------------------------------------------

FEE = {"type": "fee", "id": "f1", "time": TIME, "kind": "other", "asset": "USDT",
       "amount": "1.00"}


def fee_line(**fields: Any) -> bytes:
    return json.dumps({**FEE, **fields}).encode()


BAD_LINES: dict[str, tuple[bytes, str]] = {
    "type as a list": (fee_line(type=["fee"]), "line 1: type: ['fee'] is not one of "),
    "type as an object": (fee_line(type={"a": 1}), "line 1: type: {'a': 1} is not one of "),
    "escaped lone surrogate": (fee_line(id="a\ud800"), "line 1: id: holds a lone surrogate or "
                               "bytes that are not UTF-8 (at character 2 of 2)"),
    "raw surrogate bytes": (fee_line(id="a_").replace(b"a_", b"a\xed\xa0\x80"),
                            "line 1: id: holds a lone surrogate or bytes that are not UTF-8 "
                            "(at character 2 of 4)"),
    "surrogate in a key": (b'{"type":"fee","\\udc00":1}', "line 1: '\\udc00': key holds a "
                           "lone surrogate"),
    "nested 1000 deep": (fee_line(account="__").replace(b'"__"', b"[" * 1000 + b"]" * 1000),
                         "line 1: (record): nested deeper than 32 levels"),
    "nested 40 deep": (fee_line(account="__").replace(b'"__"', b"[" * 40 + b"]" * 40),
                       "line 1: account: nested deeper than 32 levels"),
    "NUL character": (fee_line(id="a\x00b"), "line 1: id: 'a\\x00b' holds a NUL character"),
    "1 MB id": (fee_line(id="x" * 1_000_000),
                "line 1: id: '" + "x" * 59 + "... (1000000 chars) is too long"),
    "unsafe integer": (json.dumps({"type": "policy", "id": "p2", "time": TIME,
                                   "policy": policy(version=2**53 + 1)}).encode(),
                       "line 1: policy.version: 9007199254740993 is beyond the exact integer "
                       "range +-(2^53-1)"),
    "NaN": (b'{"type":"fee","id":NaN}', "line 1: (record): not valid JSON: NaN is not a JSON "
            "value"),
    "not UTF-8": (b'{"type":"fee","id":"\xff"}', "line 1: id: holds a lone surrogate or bytes "
                  "that are not UTF-8 (at character 1 of 1)"),
}


def test_a_malformed_line_is_one_line_naming_the_field(fund_db: str, tmp_path: Path) -> None:
    wrong = {}
    for case, (line, expected) in BAD_LINES.items():  # one database for all: setup dominates
        path = write_lines(tmp_path / "bad.jsonl", [line, fee_line(id="f2")])
        message = refused(fund_db, path)
        if not message.startswith(expected):
            wrong[case] = message
    assert wrong == {}


def test_bom_and_crlf_are_accepted(fund_db: str, tmp_path: Path) -> None:
    lines = [json.dumps(record).encode() for record in crash_records()]
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(line + b"\r\n" for line in lines))
    result = run(["import", str(path)], fund_db)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("4 facts recorded")
    # An export saved with a BOM and CRLF line ends restores too, to the same events.
    export = tmp_path / "events.jsonl"
    assert run(["export", str(export)], fund_db).exit_code == 0
    windows = tmp_path / "windows.jsonl"
    windows.write_bytes(b"\xef\xbb\xbf" + export.read_bytes().replace(b"\n", b"\r\n"))
    other = f"sqlite:///{tmp_path / 'restored.sqlite'}"
    assert run(["import", str(windows)], other).exit_code == 0
    again = tmp_path / "again.jsonl"
    assert run(["export", str(again)], other).exit_code == 0
    assert again.read_bytes() == export.read_bytes()


def test_a_bom_after_the_first_line_is_refused(fund_db: str, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bom.jsonl", [fee_line(), b"\xef\xbb\xbf" + fee_line(id="f2")])
    assert refused(fund_db, path) == ("line 2: (record): a byte order mark (BOM) may only "
                                      "start the file")


# -- item 6: malformed exports given to restore ---------------------------------------------

@pytest.fixture(scope="module")
def export_lines(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The crash scenario's export (11 events), as parsed lines."""
    tmp = tmp_path_factory.mktemp("export")
    url = f"sqlite:///{tmp / 'source.sqlite'}"
    config = tmp / "fund.json"
    config.write_text(json.dumps(fund_config()))
    assert run(["init", str(config), "--time", TIME], url).exit_code == 0
    assert run(["import", str(write_jsonl(tmp / "f.jsonl", crash_records()))], url).exit_code == 0
    assert run(["export", str(tmp / "e.jsonl")], url).exit_code == 0
    return [json.loads(line) for line in (tmp / "e.jsonl").read_text().splitlines()]


def _without_assets(events: list[dict[str, Any]]) -> None:
    del events[0]["data"]["assets"]


def _long_name(events: list[dict[str, Any]]) -> None:
    for event in events:
        event["fund"] = "a" * 1000
    events[0]["data"]["fund"] = "a" * 1000


def _set(index: int, key: str, value: Any) -> Any:
    def mutate(events: list[dict[str, Any]]) -> None:
        events[index][key] = value
    return mutate


BAD_EXPORTS: dict[str, tuple[Any, str]] = {
    "data [] at the opening": (_set(0, "data", []), "line 1: data: [] is not of type 'object'"),
    "data [] on a fee": (_set(3, "data", []), "line 4: data: [] is not of type 'object'"),
    "no assets": (_without_assets, "line 1: data.assets: 'assets' is a required property"),
    "time 5 at the opening": (_set(0, "time", 5), "line 1: time: 5 is not of type 'string'"),
    "time 5 on a fee": (_set(3, "time", 5), "line 4: time: 5 is not of type 'string'"),
    "1000-char fund name": (_long_name, "line 1: data.fund: '" + "a" * 59 + "... (1000 chars) "
                            "does not match '^[a-z0-9][a-z0-9._-]{0,63}$'"),
}


def test_a_malformed_export_is_one_line_naming_the_field(
        db_url: str, tmp_path: Path, export_lines: list[dict[str, Any]]) -> None:
    assert run(["balances"], db_url).exit_code == 2  # creates the (empty) tables
    wrong = {}
    for case, (mutate, expected) in BAD_EXPORTS.items():
        events = json.loads(json.dumps(export_lines))
        mutate(events)
        message = refused(db_url, write_jsonl(tmp_path / "export.jsonl", events))
        if not message.startswith(expected):
            wrong[case] = message
    assert wrong == {}


# -- items 6 and 7: databases that cannot be opened; no password in any message ----------

COMMANDS = [["balances"], ["history"], ["rebuild"], ["account", "x"], ["export", "-"],
            ["prove", "event", "0"], ["import", "FACTS"], ["init", "CONFIG"],
            ["snapshot", "publish", "--key", "KEY", "--out", "OUT"]]


def _args(command: list[str], tmp_path: Path) -> list[str]:
    files = {"FACTS": write_jsonl(tmp_path / "f.jsonl", [FEE]), "KEY": tmp_path / "k.key",
             "CONFIG": tmp_path / "fund.json", "OUT": tmp_path / "out"}
    files["CONFIG"].write_text(json.dumps(fund_config()))
    files["KEY"].write_text("not a key")
    return [str(files.get(arg, arg)) for arg in command]


def test_a_database_that_cannot_be_opened_is_one_line_without_the_password(
        tmp_path: Path) -> None:
    expected = {
        "sqlite:////nonexistent/dir/x.sqlite": "Error: cannot open database "
            "'sqlite:////nonexistent/dir/x.sqlite': unable to open database file\n",
        "postgresql://admin:S3cretPW@127.0.0.1:1/x": "Error: cannot open database "
            "'postgresql://admin:***@127.0.0.1:1/x': connection failed: connection to "
            'server at "127.0.0.1", port 1 failed: Connection refused\n',
        "mysql://admin:S3cretPW@db.example/fund": "Error: unsupported database URL "
            "'mysql://admin:***@db.example/fund': use sqlite:///PATH or "
            "postgresql+psycopg://...\n",
        "pg://admin:S3cretPW@[::1": "Error: unsupported database URL 'pg://admin:***@[::1': use "
            "sqlite:///PATH or postgresql+psycopg://...\n",
    }
    for command in COMMANDS:
        for url, message in expected.items():
            result = CliRunner().invoke(main, [*_args(command, tmp_path), "--db", url])
            assert (command, result.exit_code, result.output) == (command, 2, message)
            assert isinstance(result.exception, SystemExit)


def test_a_missing_postgresql_database_is_one_line(pg_server: str) -> None:
    url = pg_server.rsplit("/", 1)[0].replace("postgres@", "postgres:S3cretPW@") + "/no_such_db"
    result = CliRunner().invoke(main, ["balances", "--db", url])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "S3cretPW" not in result.output
    assert result.output.endswith('database "no_such_db" does not exist\n'), result.output


def test_committed_totals_survive_an_aggregate_snapshot(make_ledger: Any, tmp_path: Path) -> None:
    from ledger.domain.fund import Fund

    ledger = make_ledger(f"sqlite:///{tmp_path / 'snap.sqlite'}")
    ledger.open_fund(fund_config(), TIME)
    fund = ledger.get_fund("main")
    fund.record_fee(fee("f1", UNITS_2_127, account="x"))
    fund.record_capital(capital("w1", UNITS_2_127, "withdraw"))
    with ledger.transaction() as connection:
        ledger.record(fund, connection)
    ledger.snapshots.put([Fund.Snapshot.take(fund)])
    loaded = ledger.get_fund("main")
    assert (loaded.committed, loaded.balances) == ({"USDT": [2**127, 0, 0]}, {"USDT": 0})
    with pytest.raises(ValueError, match=r"^amount: adding .* the fees of all accounts"):
        loaded.record_fee(fee("f2", UNITS_2_127, account="y"))
