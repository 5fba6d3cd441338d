// Run the site's verifier (the shipped bundle of web/src/verify.js) on the cases named in a
// JSON file and print one verdict per case: node verdicts.mjs VERIFY_MJS CASES_JSON.
// A case: {"kind": "snapshot"|"account"|"consistency"|"holdings", "files": {...}, "key": "vkey"}
// (holdings: also "custodian_keys", the keys the visitor pinned).
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [verifyPath, casesPath, engine] = process.argv.slice(2);
// "noble": hide WebCrypto, so the bundled @noble fallbacks (what a browser without
// crypto.subtle, or without Ed25519 in it, runs) do every hash and signature check.
if (engine === "noble") Object.defineProperty(globalThis, "crypto", { value: undefined, configurable: true });
const verify = await import(pathToFileURL(verifyPath).href);
const read = (path) => (path ? JSON.parse(readFileSync(path, "utf8")) : null);
const out = [];
for (const c of JSON.parse(readFileSync(casesPath, "utf8"))) {
  const f = c.files;
  let result;
  if (c.kind === "snapshot") result = await verify.verifySnapshot(read(f.snapshot), [c.key]);
  else if (c.kind === "account") result = await verify.verifyAccountProof(read(f.proof), read(f.snapshot), [c.key], c.account || null);
  else if (c.kind === "receipt") result = await verify.verifyReceipt(readFileSync(f.receipt, "utf8"), [c.key], f.receipt);
  else if (c.kind === "holdings") result = await verify.verifyHoldings(read(f.snapshot), [c.key], c.custodian_keys || []);
  else result = await verify.verifyConsistency(read(f.old), read(f.new), [c.key], read(f.proof));
  out.push({ name: c.name, ok: result.ok, input: result.input, reason: result.reason,
    holdings: result.holdings, assets: result.assets, figures: result.figures });
}
process.stdout.write(JSON.stringify({ engines: verify.engines, verdicts: out }));
