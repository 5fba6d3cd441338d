// Run the browser verifier (web/src/verify.js, and web/src/inclusion.js on its folds) over
// RFC 6962 vectors in transparency-dev/merkle's format and print one verdict per file:
//   node verify_vectors.mjs VECTOR_DIR [noble]
// VECTOR_DIR holds inclusion/**/*.json and consistency/**/*.json; the output is
// {"engines": ..., "verdicts": {"inclusion/1/happy-path.json": {"ok": true, "reason": null}, ...}}.
// "noble" hides WebCrypto, so the bundled @noble SHA-256 (a page without crypto.subtle) hashes.
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";

const [dir, engine] = process.argv.slice(2);
if (engine === "noble") Object.defineProperty(globalThis, "crypto", { value: undefined, configurable: true });
const { engines, merkleConsistency } = await import("../../web/src/verify.js");
const { merkleInclusion } = await import("../../web/src/inclusion.js");

const walk = (folder) => readdirSync(folder, { withFileTypes: true }).flatMap((e) =>
  e.isDirectory() ? walk(join(folder, e.name)) : e.name.endsWith(".json") ? [join(folder, e.name)] : []);
// Indexes reach 2^64 - 1, past a double's exact range: quote them before JSON.parse.
const SIZES = /("(?:leafIdx|treeSize|size1|size2)"\s*:\s*)(-?[0-9]+)/g;
const load = (path) => JSON.parse(readFileSync(path, "utf8").replace(SIZES, '$1"$2"'));
const bytes = (b64) => new Uint8Array(Buffer.from(b64, "base64"));
const proof = (v) => (v.proof || []).map(bytes);

const checks = {
  inclusion: (v) => merkleInclusion(bytes(v.leafHash), BigInt(v.leafIdx), BigInt(v.treeSize), proof(v), bytes(v.root)),
  consistency: (v) => merkleConsistency(BigInt(v.size1), BigInt(v.size2), proof(v), bytes(v.root1), bytes(v.root2)),
};

const verdicts = {};
for (const [kind, check] of Object.entries(checks)) {
  for (const path of walk(join(dir, kind)).sort()) {
    const name = relative(dir, path).split("\\").join("/");
    try {
      await check(load(path));
      verdicts[name] = { ok: true, reason: null };
    } catch (error) {
      verdicts[name] = { ok: false, reason: error.message };
    }
  }
}
process.stdout.write(JSON.stringify({ engines, verdicts }));
