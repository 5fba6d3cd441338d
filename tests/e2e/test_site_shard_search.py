"""The verify page's search by account id when a snapshot's proofs are split into shards by
nonce (funds of over 4,096 accounts): web/src/account.js run under Node on the test world's
real shard, split by the nonce's first hex digit. Without a nonce the page searches every
shard (up to 16) and verifies; with it, it opens only the shard the nonce names; beyond 16
shards it asks for the nonce."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.conftest import require
from tests.e2e.site_world import World

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_JS = ROOT / "web" / "src" / "account.js"
RUNNER = Path(__file__).with_name("shard_search.mjs")
ACCOUNT = "acct-000297"


def test_search_by_id_over_shards_split_by_nonce(site_world: World, node: str,
                                                 tmp_path: Path) -> None:
    require("web/node_modules (make web-deps)", (ROOT / "web" / "node_modules" / "canonicalize").is_dir())
    last = site_world.tiled / "snapshots" / str(site_world.sizes[-1])
    shard = json.loads((last / "accounts" / "all.json").read_text())
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"snapshot": json.loads((last / "snapshot.json").read_text()),
                                "shard": shard, "key": site_world.vkey, "account": ACCOUNT}))
    done = subprocess.run([node, str(RUNNER), str(ACCOUNT_JS), str(case)], check=True,
                          capture_output=True, text=True, timeout=120)
    out = json.loads(done.stdout)
    mine = shard["accounts"][ACCOUNT]["nonce"][0]
    names = out["names"]
    assert names == sorted({e["nonce"][0] for e in shard["accounts"].values()})
    totals = {"USDT": {"fees": "6.70", "payouts": "0.00", "clawbacks": "513.52"}}
    # no nonce: the shards are searched in order until the account's
    assert out["scan"]["kind"] == "ok"
    assert out["scan"]["totals"] == totals
    assert out["scan"]["loaded"] == names[:names.index(mine) + 1]
    # the nonce names the one shard to open
    assert out["nonce"]["kind"] == "ok" and out["nonce"]["loaded"] == [mine]
    if out["absent"] is not None:  # a nonce whose shard does not exist: not in the snapshot
        assert out["absent"]["kind"] == "input" and out["absent"]["loaded"] == []
        assert out["absent"]["plain"].startswith(f"Account “{ACCOUNT}” is not in the snapshot")
    assert out["many"] == {"kind": "input", "loaded": [], "reason": None, "totals": None,
                           "plain": f"The proofs of the snapshot at log size {site_world.sizes[-1]} "
                                    "are split by nonce into 17 files: type the nonce the "
                                    "operator gave you with your account id."}
