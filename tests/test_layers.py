"""The import contract of docs/LAYOUT.md, checked: every import of ledger/ and auditor/ (at a
module's top, inside a function, or for type checking only) is one its row of the table allows,
and no import cycle runs through any number of modules.

The table is read from docs/LAYOUT.md, so the map and the check cannot drift apart."""

from __future__ import annotations

import re

import pytest

from tests.imports import ROOT, Import, cycles, module_imports, modules

LAYOUT = ROOT / "docs" / "LAYOUT.md"
KERNEL = ("formats", "verify")  # the wire kernel: rows every other row lists


class Row:
    """One row of the contract: which modules it holds, what they may import."""

    def __init__(self, name: str, pattern: str, may: str, sql: str) -> None:
        self.name = name
        self.package = pattern.endswith(".*")
        self.prefix = pattern.removesuffix(".*")
        self.tokens = {t.strip().strip("`") for t in may.split(",")} - {"(nothing)"}
        self.rows: set[str] = set()  # filled in by contract(), once every row's name is known
        self.modules: set[str] = set()
        self.sql = sql.replace("`", "").strip()

    def holds(self, module: str) -> int:
        """How specific a match this row is for `module` (0: not at all)."""
        if module == self.prefix or (self.package and module.startswith(self.prefix + ".")):
            return len(self.prefix) + (0 if self.package else 1)
        return 0

    def allows_sql(self, name: str) -> bool:
        return self.sql == "yes" or (self.sql == "sqlalchemy.exc only"
                                     and (name == "sqlalchemy.exc"
                                          or name.startswith("sqlalchemy.exc.")))


def contract() -> list[Row]:
    """The rows of the table under `## The import contract` in docs/LAYOUT.md."""
    section = LAYOUT.read_text("utf-8").split("## The import contract", 1)[1]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].startswith("`"):
            rows.append(Row(cells[0], cells[1].strip("`"), cells[2], cells[3]))
    names = {row.name for row in rows}
    for row in rows:
        row.rows, row.modules = row.tokens & names, row.tokens - names
    return rows


ROWS = contract()


def row_of(module: str) -> Row | None:
    best = max(ROWS, key=lambda row: row.holds(module))
    return best if best.holds(module) else None


def offence(imp: Import) -> str | None:
    """Why `imp` breaks the contract, or None."""
    source = row_of(imp.module)
    assert source is not None
    if imp.target.split(".")[0] == "sqlalchemy":
        if source.allows_sql(imp.target):
            return None
        return (f"{imp.where}: imports {imp.target}, but row {source.name} may import "
                f"SQLAlchemy {'not at all' if source.sql == 'no' else source.sql}")
    target = row_of(imp.target)
    if target is None:
        return f"{imp.where}: imports {imp.target}, which no row of docs/LAYOUT.md holds"
    if target.name in source.rows or imp.target in source.modules:
        return None
    allowed = ", ".join(sorted(source.rows | source.modules)) or "nothing"
    return (f"{imp.where}: imports {imp.target} (row {target.name}), but row {source.name} "
            f"may import only {allowed} (docs/LAYOUT.md)")


def test_the_table_covers_every_module_and_names_only_real_rows_and_modules() -> None:
    names = {row.name for row in ROWS}
    assert len(names) == len(ROWS) >= 10
    assert [m for m in modules() if row_of(m) is None] == []
    for row in ROWS:
        assert row.rows <= names, (row.name, row.rows - names)
        assert [m for m in row.modules if m not in modules()] == [], row.name
        assert row.sql in ("yes", "no", "sqlalchemy.exc only"), row.name
        if row.name not in KERNEL and row.name != "assets":
            assert set(KERNEL) <= row.rows, f"row {row.name} must list the wire kernel"


# Offences being fixed (issue 22), one commit each: the list only shrinks.
KNOWN: set[tuple[str, str]] = set()


def test_every_import_follows_the_table() -> None:
    found = [(imp, reason) for imp in module_imports() if (reason := offence(imp))]
    assert {(imp.module, imp.target) for imp, _ in found} == KNOWN, \
        "\n" + "\n".join(reason for _, reason in found)


def test_no_import_cycle_at_any_depth() -> None:
    found = [" -> ".join([*cycle, cycle[0]]) for cycle in cycles(module_imports())]
    assert found == [], "import cycles:\n" + "\n".join(found)


@pytest.mark.parametrize(("module", "target", "expected"), [
    ("ledger.domain.fund", "ledger.store.tables",
     "row store), but row domain may import only domain, formats, verify"),
    ("ledger.cli.risk", "ledger.cli.publish",
     ("row cli), but row cli may import only cli.options, domain, formats, risk, service, sim, "
      "verify")),
    ("auditor.checks", "ledger.service.application", "but row auditor may import only auditor"),
    ("ledger.cli.main", "sqlalchemy", "row cli.main may import SQLAlchemy sqlalchemy.exc only"),
])
def test_a_wrong_import_is_named_with_its_rule(module: str, target: str, expected: str) -> None:
    reason = offence(Import(module, target, f"{module}:1"))
    assert reason is not None and expected in reason, reason


def test_a_cycle_through_a_function_level_import_is_found() -> None:
    edges = [Import("a.x", "a.y", "x:1"), Import("a.y", "a.z", "y:1"),
             Import("a.z", "a.x", "z:9")]
    assert cycles(edges) == [["a.x", "a.y", "a.z"]]
    assert cycles(edges[:2]) == []


def test_the_reader_sees_function_level_and_type_checking_imports(tmp_path) -> None:
    from tests.imports import imports_of

    source = ("from __future__ import annotations\nfrom typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from ledger.store import tables\n"
              "def f():\n    from . import waterfall\n    import ledger.service.queries\n")
    found = imports_of("ledger.domain.fund", source, "ledger/domain/fund.py", package=False)
    assert [(i.target, i.where) for i in found] == [
        ("ledger.store.tables", "ledger/domain/fund.py:4"),
        ("ledger.domain.waterfall", "ledger/domain/fund.py:6"),
        ("ledger.service.queries", "ledger/domain/fund.py:7")]
    assert re.fullmatch(r"ledger/domain/fund\.py:\d+", found[0].where)
