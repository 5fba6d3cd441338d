"""`site build --account-shards`: the site carries the published account-proof shards of the
latest snapshots as scripts (what the verify page loads by account id), each one the
published shard's JSON exactly; a shard that is not its snapshot's, or reached through a
symlink, is refused in one line with nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.site_world import World, build, data_of, refused

PREFIX = "(window.BACKSTOP_SHARDS = window.BACKSTOP_SHARDS || {})"


def script_document(path: Path) -> tuple[str, Any]:
    """The key and the shard a carried script sets."""
    text = path.read_text("ascii")
    assert text.startswith(PREFIX + '["') and text.endswith(";\n")
    key, _, body = text[len(PREFIX) + 1:-2].partition("] = ")
    return json.loads(key), json.loads(body)


def built(world: World, out: Path, *extra: str) -> dict[str, Any]:
    result = build("--published", str(world.tiled), str(world.directory), "--out", str(out),
                   "--key", world.vkey, *extra)
    assert result.exit_code == 0, result.output
    return data_of(out)


def carried(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.glob("snapshots/*/accounts/*"))


def test_by_default_the_latest_snapshots_shards_exactly_as_published(site_world: World,
                                                                      tmp_path: Path) -> None:
    out = tmp_path / "site"
    data = built(site_world, out)
    last = site_world.sizes[-1]
    assert carried(out) == [f"snapshots/{last}/accounts/all.js"]
    key, shard = script_document(out / "snapshots" / str(last) / "accounts" / "all.js")
    published = site_world.tiled / "snapshots" / str(last) / "accounts" / "all.json"
    assert key == f"{last}/all"
    assert shard == json.loads(published.read_text())
    listing = {s["size"]: s["shards"] for s in data["snapshots"]}
    assert listing[last] == {"digits": 0, "names": ["all"], "accounts": 143}
    assert [size for size, shards in listing.items() if shards is not None] == [last]


def test_all_zero_and_a_bad_count(site_world: World, tmp_path: Path) -> None:
    every = built(site_world, tmp_path / "every", "--account-shards", "all")
    # the directory-form snapshot (part 2) has no shards to carry
    assert carried(tmp_path / "every") == [f"snapshots/{size}/accounts/all.js"
                                           for size in sorted(map(str, site_world.sizes))]
    assert sum(s["shards"] is not None for s in every["snapshots"]) == 3
    built(site_world, tmp_path / "none", "--account-shards", "0")
    assert carried(tmp_path / "none") == []
    result = build("--published", str(site_world.tiled), "--out", str(tmp_path / "x"),
                   "--account-shards", "-1")
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "Error: Invalid value for --account-shards: '-1' is neither a number of snapshots "
        "nor 'all'")
    assert not (tmp_path / "x").exists()


def copy_of(site_world: World, tmp_path: Path) -> tuple[Path, Path]:
    copy = tmp_path / "published"
    shutil.copytree(site_world.tiled, copy)
    return copy, copy / "snapshots" / str(site_world.sizes[-1]) / "accounts"


@pytest.mark.parametrize(("field", "value", "shown"), [
    ("root", "00" * 32, "'" + "00" * 32 + "'"), ("count", 7, "7"), ("log_size", 1, "1")])
def test_a_shard_of_another_tree_is_refused(site_world: World, tmp_path: Path, field: str,
                                            value: Any, shown: str) -> None:
    copy, accounts = copy_of(site_world, tmp_path)
    shard = json.loads((accounts / "all.json").read_text())
    wanted = shard[field]
    shard[field] = value
    (accounts / "all.json").write_text(json.dumps(shard))
    line = refused(tmp_path, "--published", str(copy), "--key", site_world.vkey)
    wanted_text = f"'{wanted}'" if isinstance(wanted, str) else str(wanted)
    assert line == (f"Error: {accounts / 'all.json'}: {field} {shown} is not the snapshot's "
                    f"{wanted_text}")


def test_a_shard_missing_accounts_or_misnamed_is_refused(site_world: World,
                                                         tmp_path: Path) -> None:
    copy, accounts = copy_of(site_world, tmp_path)
    shard = json.loads((accounts / "all.json").read_text())
    del shard["accounts"]["acct-000297"]
    (accounts / "all.json").write_text(json.dumps(shard))
    line = refused(tmp_path, "--published", str(copy), "--key", site_world.vkey)
    assert line == f"Error: {accounts}: the shards hold 142 accounts, the snapshot has 143"
    (accounts / "all.json").rename(accounts / "ab.json")
    line = refused(tmp_path, "--published", str(copy), "--key", site_world.vkey)
    assert line == (f"Error: {accounts / 'ab.json'}: not a shard name for 0 nonce digits "
                    "(all.json)")


def test_a_symlinked_shard_is_refused(site_world: World, tmp_path: Path) -> None:
    copy, accounts = copy_of(site_world, tmp_path)
    kept = tmp_path / "kept.json"
    (accounts / "all.json").rename(kept)
    (accounts / "all.json").symlink_to(kept)
    line = refused(tmp_path, "--published", str(copy), "--key", site_world.vkey)
    assert line == (f"Error: {accounts / 'all.json'}: is a symbolic link; the site reads only "
                    "regular files inside the publication, never through a symbolic link")
