// The verify page's search by account id (web/src/account.js, from source) over a snapshot
// whose shards are split by nonce: node shard_search.mjs ACCOUNT_JS INPUT_JSON. The input
// names the snapshot, its one published shard (all.json), the key and the account; the
// shard is split here by the nonce's first hex digit, as a fund of over 4,096 accounts
// publishes it, and each case prints its outcome and the shards it loaded.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [accountPath, inputPath] = process.argv.slice(2);
const { verifyById } = await import(pathToFileURL(accountPath).href);
const input = JSON.parse(readFileSync(inputPath, "utf8"));
const whole = input.shard;
const parts = {};
for (const [id, entry] of Object.entries(whole.accounts)) {
  const name = entry.nonce[0];
  parts[name] ??= { ...whole, accounts: {} };
  parts[name].accounts[id] = entry;
}
const names = Object.keys(parts).sort();
const count = Object.keys(whole.accounts).length;
const run = async (nonce, listing) => {
  const loaded = [];
  const load = async (size, name) => { loaded.push(name); return parts[name]; };
  const snap = { size: input.snapshot.log.size, doc: input.snapshot, shards: listing };
  const r = await verifyById(snap, input.account, nonce, [input.key], load, [snap]);
  return { kind: r.kind, plain: r.plain, reason: r.reason, loaded, totals: r.doc && r.doc.totals };
};
const split = { digits: 1, names, accounts: count };
const many = { digits: 2, names: Array.from({ length: 17 }, (_, i) => i.toString(16).padStart(2, "0")), accounts: count };
const nonce = whole.accounts[input.account].nonce;
const absent = "0123456789abcdef".split("").find((d) => !names.includes(d));
const out = {
  names,
  scan: await run("", split),
  nonce: await run(nonce, split),
  absent: absent === undefined ? null : await run(absent + nonce.slice(1), split),
  many: await run("", many),
};
process.stdout.write(JSON.stringify(out));
