"""`backstop site build`: the site's figures are the publication's, exactly; the output is
deterministic; bad input ends in one line, exit 2, with nothing written."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ledger.service.signing import generate_signer
from tests.e2e.site_world import World, build, data_of, refused


def demo_origin(vkey: str) -> str:
    """The derived origin of fund demo's log under `vkey` (schemas/README.md, "Origin")."""
    public = base64.b64decode(vkey.split("+", 2)[2])[1:]
    return "backstop/demo/" + hashlib.sha256(public).hexdigest()[:16]


def units(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole + frac)


@pytest.fixture(scope="module")
def built(site_world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("built") / "site"
    result = build("--published", str(site_world.tiled), str(site_world.directory),
                   "--out", str(out), "--key", site_world.vkey)
    assert result.exit_code == 0, result.output
    serve = f"serve it: python -m http.server -d {out}  (or open {out / 'index.html'})"
    assert result.output.splitlines()[-1] == serve
    return out


def test_files_and_snapshots(built: Path, site_world: World) -> None:
    data = data_of(built)
    sizes = sorted([*site_world.sizes, json.loads(
        (site_world.directory / "snapshot.json").read_text())["log"]["size"]])
    assert [s["size"] for s in data["snapshots"]] == sizes
    for s in data["snapshots"]:
        copied = built / s["file"]
        assert json.loads(copied.read_text()) == s["doc"]
        assert s["checkpoint"].startswith(f"{demo_origin(site_world.vkey)}\n{s['size']}\n")
        assert s["signers"] == ["+".join(site_world.vkey.split("+", 2)[:2])]
    assert data["key"] == {"vkey": site_world.vkey, "source": "pinned with --key at build time"}
    assert (built / "verifier-key").read_text() == site_world.vkey + "\n"
    for name in ("index.html", "verify.html", "assets/app.js", "assets/app.css", "balances.csv",
                 "events.csv"):
        assert (built / name).is_file(), name


def test_balance_history_meets_every_signed_reserve(built: Path) -> None:
    """The balance after the last event below each snapshot's size is its signed reserve."""
    data = data_of(built)
    points = data["balances"]["USDT"]
    for s in data["snapshots"]:
        before = [p for p in points if p[1] < s["size"]]
        assert before[-1][2] == s["reserves"]["USDT"], s["size"]
    csv_rows = (built / "balances.csv").read_text().splitlines()
    assert csv_rows[0] == "time,index,asset,balance"
    assert csv_rows[1] == "2020-03-12T00:00:00Z,2,USDT,10000.00"  # the capital injected
    assert csv_rows[-1].endswith(f",USDT,{data['snapshots'][-1]['reserves']['USDT']}")


def test_flows_add_up_to_the_signed_account_totals(built: Path, site_world: World) -> None:
    """Deficits covered are the accounts' payouts; socialized loss (nothing unresolved) is
    their clawbacks; fee inflows are the account fees plus fees without an account."""
    data = data_of(built)
    totals = data["snapshots"][-1]["doc"]["accounts"]["totals"]["USDT"]
    flows = data["flows"]
    assert sum(units(r["covered"]) for r in flows) == units(totals["payouts"])
    assert sum(units(r["socialized"]) for r in flows) == units(totals["clawbacks"])
    lines = [json.loads(line) for line in (site_world.directory / "events.jsonl").open()]
    tiles_only = data_of(built)["snapshots"][-1]["size"]
    assert tiles_only > len(lines)  # the tiled log is longer: the figures come from it
    fees = sum(units(r["fees"]) for r in flows)
    assert fees >= units(totals["fees"])
    periods = [r["period"] for r in flows]
    assert periods == sorted(periods) and periods[0] == "2020-03-12T00:00:00Z"
    assert len(periods) == len(set(periods))  # one asset: one row per hour, quiet hours too


def test_events_are_every_socialized_loss_and_clawback(built: Path, site_world: World) -> None:
    from auditor.verify.tiles import LocalSource, verified_lines

    size = site_world.sizes[-1]
    root = bytes.fromhex(json.loads(site_world.snapshot(size).read_text())["log"]["root"])
    events = [json.loads(line) for line in verified_lines(LocalSource(site_world.tiled), size, root)]
    wanted = [e for e in events if e["type"] in ("socialized_loss_assessed", "clawback_charged")]
    data = data_of(built)
    assert [e["index"] for e in data["events"]] == [e["index"] for e in wanted]
    first = data["events"][0]
    liquidation = next(e for e in events if e["type"] == "liquidation_settled"
                       and e["ref"] == first["ref"])
    assert (first["kind"], first["market"], first["account"]) == \
        ("socialized loss", "BTC-PERP", liquidation["data"]["account"])
    rows = (built / "events.csv").read_text().splitlines()
    assert len(rows) == 1 + len(wanted)


def test_output_is_deterministic(built: Path, site_world: World, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert build("--published", str(site_world.tiled), str(site_world.directory), "--out",
                 str(again), "--key", site_world.vkey).exit_code == 0
    files = sorted(p.relative_to(built) for p in built.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (built / name).read_bytes() == (again / name).read_bytes(), name


def test_key_from_the_publication(site_world: World, tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = build("--published", str(site_world.tiled), "--out", str(out))
    assert result.exit_code == 0, result.output
    data = data_of(out)
    assert data["key"]["vkey"] == site_world.vkey
    assert [s["size"] for s in data["snapshots"]] == site_world.sizes


def test_wrong_key_is_refused(site_world: World, tmp_path: Path) -> None:
    stranger = generate_signer("stranger.example").verifier_key()
    line = refused(tmp_path, "--published", str(site_world.tiled), "--key", stranger)
    assert line.endswith("snapshots/291/snapshot.json: signatures: 0 known key(s) verified, "
                         "1 required")


def test_malformed_key_is_refused(site_world: World, tmp_path: Path) -> None:
    line = refused(tmp_path, "--published", str(site_world.tiled), "--key", "nota+key")
    assert line == "Error: --key nota+key: neither a verifier key nor a key file"


def test_missing_folder_is_refused(tmp_path: Path) -> None:
    line = refused(tmp_path, "--published", str(tmp_path / "nowhere"))
    assert line == (f"Error: {tmp_path / 'nowhere'}: neither a tiled log (tile/, snapshots/) "
                    "nor a published snapshot directory (snapshot.json)")


def test_a_tiled_logs_snapshot_folder_is_refused_naming_the_root(site_world: World,
                                                                  tmp_path: Path) -> None:
    folder = site_world.tiled / "snapshots" / str(site_world.sizes[0])
    line = refused(tmp_path, "--published", str(folder))
    assert line == (f"Error: {folder}: one snapshot of a tiled log; pass the log's root "
                    f"{site_world.tiled} (its events are in the tiles)")


def test_tampered_events_are_refused(site_world: World, tmp_path: Path) -> None:
    copy = tmp_path / "published"
    shutil.copytree(site_world.directory, copy)
    events = (copy / "events.jsonl").read_text().replace('"10000.00"', '"10001.00"', 1)
    (copy / "events.jsonl").write_text(events)
    line = refused(tmp_path, "--published", str(copy))
    assert "snapshot.json: log root " in line and "is not the root of the first 2044 events" in line


def test_tampered_tile_is_refused(site_world: World, tmp_path: Path) -> None:
    copy = tmp_path / "published"
    shutil.copytree(site_world.tiled, copy)
    bundle = copy / "tile" / "entries" / "000"
    data = bytearray(bundle.read_bytes())
    data[100] ^= 0x01
    bundle.write_bytes(bytes(data))
    line = refused(tmp_path, "--published", str(copy))
    assert "tile/entries/000: entry " in line and "does not hash to hash" in line


def test_unreadable_snapshot_is_refused(site_world: World, tmp_path: Path) -> None:
    copy = tmp_path / "published"
    shutil.copytree(site_world.directory, copy)
    (copy / "snapshot.json").write_text('{"format": ')
    line = refused(tmp_path, "--published", str(copy))
    assert line.startswith(f"Error: {copy / 'snapshot.json'}: ")


def test_taken_out_needs_force(site_world: World, tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "keep").write_text("x")
    result = build("--published", str(site_world.tiled), "--out", str(out))
    assert result.exit_code == 2
    assert (out / "keep").read_text() == "x"
    result = build("--published", str(site_world.tiled), "--out", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert not (out / "keep").exists() and (out / "index.html").is_file()


def test_sizing_figures_are_shown_when_a_snapshot_carries_them(site_world: World) -> None:
    """metrics.risk (optional; its shape is the publisher's) becomes [path, value] rows. Read
    through site_data: the snapshot schema of this branch does not allow the member yet."""
    from ledger.service.site import Publication, Snapshot, site_data

    doc = json.loads((site_world.directory / "snapshot.json").read_text())
    doc["metrics"]["risk"] = {"target": {"USDT": "1234.50"}, "quantile": "0.99", "ok": True,
                              "none": None}
    lines = (site_world.directory / "events.jsonl").read_bytes().splitlines()
    publication = Publication("demo", [Snapshot(doc, None, site_world.directory, None)], lines)
    data = site_data(publication, site_world.vkey, "test")
    assert data["risk"] == [{
        "size": doc["log"]["size"], "time": doc["time"],
        "figures": [["none", ""], ["ok", "true"], ["quantile", "0.99"], ["target.USDT", "1234.50"]]}]


# ------------------------------------------------------------------ hostile publications


def directory_copy(site_world: World, tmp_path: Path) -> Path:
    copy = tmp_path / "published"
    shutil.copytree(site_world.directory, copy)
    return copy


def no_secret_written(tmp_path: Path) -> None:
    """Nothing under tmp_path but the test's own inputs holds the outside file's bytes."""
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.name != "secret":
            assert b"SECRET" not in path.read_bytes(), path


def test_a_checkpoint_symlinked_outside_is_refused(site_world: World, tmp_path: Path) -> None:
    copy = directory_copy(site_world, tmp_path)
    secret = tmp_path / "secret"
    secret.write_text("SECRET of the build machine\n")
    (copy / "checkpoint").unlink()
    (copy / "checkpoint").symlink_to(secret)
    line = refused(tmp_path, "--published", str(copy), "--key", site_world.vkey)
    assert line == (f"Error: {copy / 'checkpoint'}: is a symbolic link; the site reads only "
                    "regular files inside the publication, never through a symbolic link")
    no_secret_written(tmp_path)


def test_a_checkpoint_symlinked_inside_is_refused(site_world: World, tmp_path: Path) -> None:
    """Even to a file of the publication: ROOT/checkpoint is another snapshot's."""
    copy = tmp_path / "published"
    shutil.copytree(site_world.tiled, copy)
    first = copy / "snapshots" / str(site_world.sizes[0]) / "checkpoint"
    first.unlink()
    first.symlink_to("../../checkpoint")
    line = refused(tmp_path, "--published", str(copy))
    assert line == (f"Error: {first}: is a symbolic link; the site reads only regular files "
                    "inside the publication, never through a symbolic link")


def test_a_symlinked_folder_in_the_publication_is_refused(site_world: World,
                                                          tmp_path: Path) -> None:
    copy = tmp_path / "published"
    shutil.copytree(site_world.tiled, copy)
    folder = copy / "snapshots" / str(site_world.sizes[1])
    outside = tmp_path / "elsewhere"
    folder.rename(outside)
    folder.symlink_to(outside)
    line = refused(tmp_path, "--published", str(copy))
    assert line == (f"Error: {folder}: is a symbolic link; the site reads only regular files "
                    "inside the publication, never through a symbolic link")


def test_a_symlinked_tile_is_refused(site_world: World, tmp_path: Path) -> None:
    copy = tmp_path / "published"
    shutil.copytree(site_world.tiled, copy)
    bundle = copy / "tile" / "entries" / "000"
    kept = tmp_path / "bundle"
    bundle.rename(kept)
    bundle.symlink_to(kept)  # the same bytes: refused for being a link, not for its content
    line = refused(tmp_path, "--published", str(copy))
    assert line == (f"Error: {bundle}: is a symbolic link; the site reads only regular files "
                    "inside the publication, never through a symbolic link")


@pytest.mark.parametrize("name", ["checkpoint", "events.jsonl", "snapshot.json"])
def test_a_fifo_is_refused_without_blocking(site_world: World, tmp_path: Path,
                                            name: str) -> None:
    copy = directory_copy(site_world, tmp_path)
    (copy / name).unlink()
    os.mkfifo(copy / name)  # nobody writes it: a read would block for ever
    line = refused(tmp_path, "--published", str(copy), "--key", site_world.vkey)
    assert line == (f"Error: {copy / name}: is a FIFO; the site reads only regular files "
                    "inside the publication, never through a symbolic link")


def test_an_oversized_checkpoint_is_refused(site_world: World, tmp_path: Path) -> None:
    copy = directory_copy(site_world, tmp_path)
    (copy / "checkpoint").write_bytes(b"x" * (64 * 1024 + 1))
    line = refused(tmp_path, "--published", str(copy), "--key", site_world.vkey)
    assert line == (f"Error: {copy / 'checkpoint'}: larger than the 65,536-byte limit for "
                    "this file")


def operator(site_world: World) -> Any:
    from auditor.verify.keys import Signer

    return Signer.from_pem((site_world.base / "operator.key").read_bytes())


def test_a_checkpoint_signed_by_another_key_is_refused(site_world: World,
                                                       tmp_path: Path) -> None:
    """The body is the snapshot's own; only the signature is a stranger's."""
    from auditor.verify.keys import sign_note

    copy = directory_copy(site_world, tmp_path)
    body = (copy / "checkpoint").read_text().split("\n\n", 1)[0] + "\n"
    (copy / "checkpoint").write_text(sign_note(body, [generate_signer("site.backstop.example")]))
    line = refused(tmp_path, "--published", str(copy), "--key", site_world.vkey)
    assert line == (f"Error: {copy / 'checkpoint'}: not a checkpoint signed by the pinned key "
                    "(note has no verifiable signatures from a known key)")


@pytest.mark.parametrize("field", ["origin", "size", "root"])
def test_a_checkpoint_naming_another_log_is_refused(site_world: World, tmp_path: Path,
                                                    field: str) -> None:
    """Signed by the operator's own key, but not the snapshot's log: a split view."""
    from auditor.verify.keys import checkpoint_body, sign_note

    copy = directory_copy(site_world, tmp_path)
    log = json.loads((copy / "snapshot.json").read_text())["log"]
    size, root = log["size"], log["root"]
    other = "ab" * 32
    mine = demo_origin(site_world.vkey)
    body = checkpoint_body("backstop/other" if field == "origin" else mine,
                           size + 1 if field == "size" else size,
                           bytes.fromhex(other if field == "root" else root))
    (copy / "checkpoint").write_text(sign_note(body, [operator(site_world)]))
    line = refused(tmp_path, "--published", str(copy), "--key", site_world.vkey)
    where = f"Error: {copy / 'checkpoint'}: "
    assert line == where + {
        "origin": f"origin 'backstop/other' is not '{mine}', the snapshot's",
        "size": f"size {size + 1} is not the snapshot's log size {size}",
        "root": f"root {other} is not the snapshot's log root {root}"}[field]


def test_a_refused_build_leaves_the_old_site(site_world: World, tmp_path: Path) -> None:
    out = tmp_path / "site"
    assert build("--published", str(site_world.directory), "--out", str(out)).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    copy = directory_copy(site_world, tmp_path)
    (copy / "checkpoint").unlink()
    (copy / "checkpoint").symlink_to(site_world.directory / "checkpoint")
    result = build("--published", str(copy), "--out", str(out), "--force")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["published", "site"]


# ------------------------------------------------------------------------------ the output


def test_out_a_symlink_is_refused_without_force(site_world: World, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(target)
    result = build("--published", str(site_world.directory), "--out", str(link))
    assert result.exit_code == 2
    assert result.output == f"Error: --out {link} already exists; pass --force to replace it\n"
    assert os.readlink(link) == str(target)
    assert [p.name for p in target.iterdir()] == ["keep"]


@pytest.mark.parametrize("points_at", ["a folder", "nothing"])
def test_out_a_symlink_with_force_is_replaced_not_followed(site_world: World, tmp_path: Path,
                                                           points_at: str) -> None:
    """The link itself becomes the site; what it pointed at is untouched (nothing is written
    through it); nothing is left beside it."""
    target = tmp_path / "target"
    if points_at == "a folder":
        target.mkdir()
        (target / "keep").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(target)
    result = build("--published", str(site_world.directory), "--out", str(link), "--force")
    assert result.exit_code == 0, result.output
    assert not link.is_symlink() and (link / "index.html").is_file()
    if points_at == "a folder":
        assert [p.name for p in target.iterdir()] == ["keep"]
    else:
        assert not os.path.lexists(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["link", *(["target"] if points_at == "a folder" else [])])


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


def test_leftovers_of_a_killed_build_are_removed(site_world: World, tmp_path: Path) -> None:
    """A build killed between its renames leaves .site.<pid>.<random>.old (or .partial):
    removed once the pid is dead and the site exists; a live writer's, and names of another
    scheme, are kept."""
    out = tmp_path / "site"
    dead, live = dead_pid(), os.getpid()
    names = [f".site.{dead}.k1ll3d.old", f".site.{dead}.k1ll3d.partial",
             f".site.{live}.runn1ng.partial", ".site.unknown.old", f".other.{dead}.x.old"]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.html").write_text("stale")
    result = build("--published", str(site_world.directory), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["site", f".site.{live}.runn1ng.partial", ".site.unknown.old", f".other.{dead}.x.old"])
