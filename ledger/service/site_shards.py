"""The account-proof shards the site carries, so a trader finds their proof by account id.

A tiled publication keeps, per snapshot, `accounts/index.json` and the shards
`accounts/<nonce prefix>.json` (`all.json` for one shard; auditor.verify.shards). The site
carries the shards of the latest `--account-shards N` snapshots (default 1: one snapshot's
shards are a few hundred bytes per account, so the site grows with the accounts, not with the
accounts times the snapshots) as `snapshots/<size>/accounts/<name>.js`, each a classic
script that sets one entry of `window.BACKSTOP_SHARDS`: a page loads it with a <script src>
its CSP allows (`script-src 'self'`), from file:// too, where fetch() would be refused.

Read through `site_files.Tree` (no symlinks, regular files, capped), and checked before it
is served: the index and every shard name the snapshot's fund, log size, account root,
count and assets; a shard's name is the one its digits give, and each of its accounts'
nonces starts with it. The proofs themselves are checked by the page, as the auditor
checks them: a shard the operator got wrong fails there, in the visitor's browser.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.formats.clip import clip
from auditor.verify.reads import MAX_DOCUMENT
from auditor.verify.shards import INDEX_FORMAT, MAX_DIGITS, SHARD_FORMAT
from ledger.service.site_figures import SiteError
from ledger.service.site_files import Tree

MAX_INDEX = 64 * 1024  # accounts/index.json: one small object
_NAME = re.compile(rf"(all|[0-9a-f]{{1,{MAX_DIGITS}}})\.json")
_NONCE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Shards:
    """One snapshot's shards: the nonce digits that name them and each shard's document."""

    size: int
    digits: int
    shards: dict[str, dict[str, Any]]  # name without ".json" -> the shard document

    def listing(self) -> dict[str, Any]:
        """What data.js says of them: how to name a shard, and which exist."""
        return {"digits": self.digits, "names": sorted(self.shards),
                "accounts": sum(len(s["accounts"]) for s in self.shards.values())}

    def scripts(self) -> dict[str, bytes]:
        """`<name>.js` -> its bytes: JSON re-serialised (so nothing but a literal is in it)."""
        out = {}
        for name, shard in sorted(self.shards.items()):
            key = json.dumps(f"{self.size}/{name}")
            text = json.dumps(shard, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
            out[f"{name}.js"] = ("(window.BACKSTOP_SHARDS = window.BACKSTOP_SHARDS || {})"
                                 f"[{key}] = {text};\n").encode("ascii")
        return out


def _load(tree: Tree, relative: str, cap: int) -> Any:
    data = tree.read(relative, cap)
    where = tree.root / relative
    if data is None:
        raise SiteError(f"{where}: cannot read (No such file or directory)")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as error:
        raise SiteError(f"{where}: not JSON ({error})") from None


def _check_header(document: Any, snapshot: dict[str, Any], fmt: str, where: Path) -> None:
    """SiteError unless `document` is a `fmt` document of `snapshot`'s account tree."""
    if not isinstance(document, dict) or document.get("format") != fmt:
        got = document.get("format") if isinstance(document, dict) else document
        raise SiteError(f"{where}: format {clip(got)} is not {fmt!r}")
    accounts = snapshot["accounts"]
    wanted = {"fund": snapshot["fund"], "log_size": snapshot["log"]["size"],
              "root": accounts["root"], "count": accounts["count"], "assets": accounts["assets"]}
    for field, value in wanted.items():
        if document.get(field) != value:
            raise SiteError(f"{where}: {field} {clip(document.get(field), 80)} is not the "
                            f"snapshot's {clip(value, 80)}")


def read_shards(tree: Tree, folder: str, snapshot: dict[str, Any]) -> Shards | None:
    """The shards of the snapshot in `folder` of `tree` (None when it has no accounts/),
    checked against `snapshot`; SiteError naming the file when one is not its snapshot's."""
    if tree.kind(f"{folder}/accounts") is None:
        return None
    index = _load(tree, f"{folder}/accounts/index.json", MAX_INDEX)
    where = tree.root / folder / "accounts"
    _check_header(index, snapshot, INDEX_FORMAT, where / "index.json")
    digits = index.get("digits")
    if not isinstance(digits, int) or isinstance(digits, bool) or not 0 <= digits <= MAX_DIGITS:
        raise SiteError(f"{where / 'index.json'}: digits {clip(digits)} is not 0 to {MAX_DIGITS}")
    shards: dict[str, dict[str, Any]] = {}
    for file in tree.listdir(f"{folder}/accounts"):
        if file == "index.json":
            continue
        match = _NAME.fullmatch(file)
        name = match.group(1) if match else ""
        if not match or (name == "all") != (digits == 0) or (digits and len(name) != digits):
            raise SiteError(f"{where / file}: not a shard name for {digits} nonce digits "
                            f"({'all.json' if digits == 0 else 'hex.json'})")
        shard = _load(tree, f"{folder}/accounts/{file}", MAX_DOCUMENT)
        _check_header(shard, snapshot, SHARD_FORMAT, where / file)
        entries, nodes = shard.get("accounts"), shard.get("nodes")
        if not isinstance(entries, dict) or not isinstance(nodes, dict):
            raise SiteError(f"{where / file}: accounts and nodes must be objects")
        prefix = "" if digits == 0 else name
        for account, entry in entries.items():
            nonce = entry.get("nonce") if isinstance(entry, dict) else None
            if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce) \
                    or not nonce.startswith(prefix):
                raise SiteError(f"{where / file}: accounts.{clip(account)}: nonce "
                                f"{clip(nonce)} is not 64 hex digits starting {prefix!r}")
        shards[name] = shard
    held = sum(len(s["accounts"]) for s in shards.values())
    if held != snapshot["accounts"]["count"]:
        raise SiteError(f"{where}: the shards hold {held} accounts, the snapshot has "
                        f"{snapshot['accounts']['count']}")
    return Shards(snapshot["log"]["size"], digits, shards)
