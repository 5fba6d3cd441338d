// The in-browser verifier: the checks `backstop-audit snapshot`, `account` and `consistency`
// make, with the same verdicts and the same reasons (auditor/checks.py, auditor/verify/*.py).
// Every function takes parsed JSON documents and verifier keys (C2SP form, strings) and
// resolves to {ok, reason, input, checks}: ok true is the auditor's VERIFIED (exit 0);
// input true is its ERROR (exit 2: a key or document that cannot be used at all); otherwise
// `reason` is the text after "FAILED: " in the auditor's verdict, word for word.
// Plain ES module, no DOM: the page bundles it, and tests run the same file under Node.
// The RFC 6962 folds and merkleConsistency are exported for web/src/inclusion.js and the
// vector test (tests/vectors/verify_vectors.mjs); the page's bundle drops what it never calls.
import canonicalize from "canonicalize";
import { ed25519Verify, engines, sha256 } from "./crypto.js";

export { engines };
// The holdings' signatures (web/src/reserves.js), in this bundle for the agreement test.
export { checksumAddress, recoverAddress, snapshotChallenge, verifyHoldings } from "./reserves.js";
// Receipts (web/src/receipt.js), likewise.
export { parseReceipt, verifyReceipt } from "./receipt.js";

const KINDS = ["fees", "payouts", "clawbacks"];
const HASH_SIZE = 32;
const SUM_LIMIT = 1n << 128n;
const QUOTE_CHARS = 60;
const enc = new TextEncoder();

class Failed extends Error {}
class InputError extends Error {}

// ---------------------------------------------------------------- Python's ways of quoting

/** Python's repr() of a str (what the auditor's messages quote). */
export function pyRepr(value) {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (Array.isArray(value)) return "[" + value.map(pyRepr).join(", ") + "]";
  if (typeof value === "object") {
    return "{" + Object.entries(value).map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`).join(", ") + "}";
  }
  const text = String(value);
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (ch === quote || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += "\\x" + code.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + quote;
}

/** auditor.formats.clip.clip: repr cut to about 60 characters with the full length noted. */
export function clip(value, limit = QUOTE_CHARS) {
  const text = pyRepr(value);
  const chars = [...text];
  if (chars.length <= limit) return text;
  const size = typeof value === "string" ? `${[...value].length} chars` : `${chars.length} chars as text`;
  return `${chars.slice(0, limit).join("")}... (${size})`;
}

// ---------------------------------------------------------------- bytes

function fromHex(text) {
  if (typeof text !== "string") throw new TypeError("fromhex() argument must be str");
  const clean = text.replace(/^\s+|\s+$/g, "");
  const out = new Uint8Array(clean.length >> 1);
  for (let i = 0; i < clean.length; i += 2) {
    const pair = clean.slice(i, i + 2);
    if (!/^[0-9a-fA-F]{2}$/.test(pair)) {
      const bad = /^[0-9a-fA-F]$/.test(clean[i]) ? i + 1 : i;
      throw new Failed(`non-hexadecimal number found in fromhex() arg at position ${bad}`);
    }
    out[i >> 1] = parseInt(pair, 16);
  }
  return out;
}

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
export const hexOrEmpty = (bytes) => toHex(bytes) || "(empty)";

export function equal(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) { out.set(p, pos); pos += p.length; }
  return out;
}

/** Python's base64.b64decode(text, validate=True), or null where it raises. */
export function b64decode(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  const data = text.replace(/=+$/, "");
  const pads = text.length - data.length;
  const rest = data.length % 4;
  if (rest === 1 || (rest === 2 && pads !== 2) || (rest === 3 && pads < 1)) return null;
  const bin = atob(data + "=".repeat((4 - rest) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

// ---------------------------------------------------------------- keys

function validName(name) {
  // C2SP signed-note: non-empty, no "+", no whitespace, no control characters.
  return name.length > 0 && !name.includes("+") && !/[\s\u0000-\u001f]/u.test(name);
}

async function keyId(name, publicKey) {
  const digest = await sha256(concat(enc.encode(name), Uint8Array.of(0x0a, 0x01), publicKey));
  return digest.slice(0, 4);
}

/** Parse a C2SP verifier key `name+hex(keyid)+base64(0x01 || key)` (auditor.verify.keys). */
export async function parseVerifierKey(text) {
  text = String(text).trim();
  const first = text.indexOf("+");
  const second = first < 0 ? -1 : text.indexOf("+", first + 1);
  if (second < 0) throw new InputError(`verifier key ${clip(text)} must be name+keyid+key`);
  const name = text.slice(0, first);
  const kidHex = text.slice(first + 1, second);
  const keyB64 = text.slice(second + 1);
  if (!validName(name)) throw new InputError(`verifier key has invalid name ${clip(name)}`);
  if (!/^[0-9a-f]{8}$/.test(kidHex)) {
    throw new InputError(`verifier key id ${clip(kidHex)} is not 8 lowercase hex digits`);
  }
  const key = b64decode(keyB64);
  if (key === null) throw new InputError(`verifier key for ${clip(name)} is not valid base64`);
  if (key.length !== 33 || key[0] !== 0x01) {
    throw new InputError(`verifier key for ${clip(name)} is not an Ed25519 key (0x01 + 32 bytes)`);
  }
  const publicKey = key.slice(1);
  if (!equal(await keyId(name, publicKey), fromHex(kidHex))) {
    throw new InputError(`verifier key id ${kidHex} does not match the key for ${clip(name)}`);
  }
  return { name, keyName: `${name}+${kidHex}`, publicKey };
}

/** Every non-blank line of each text is a verifier key (as `--key FILE` reads a key file). */
async function loadVerifiers(keys) {
  const out = [];
  for (const value of Array.isArray(keys) ? keys : [keys]) {
    const lines = String(value).split(/\r?\n/).filter((l) => l.trim());
    for (const [n, line] of lines.entries()) {
      try {
        out.push(await parseVerifierKey(line));
      } catch (error) {
        throw new InputError(lines.length > 1 ? `key line ${n + 1}: ${error.message}` : `key: ${error.message}`);
      }
    }
  }
  if (!out.length) throw new InputError("no verifier key given (--key)");
  return out;
}

// ---------------------------------------------------------------- the report

class Report {
  constructor() { this.checks = []; }
  ok(check, detail = "") { this.checks.push({ check, ok: true, detail }); }
  note(check, detail) { this.checks.push({ check, ok: null, detail }); }
  fail(check, reason) {
    this.checks.push({ check, ok: false, detail: reason });
    return new Failed(`${check}: ${reason}`);
  }
}

async function run(body) {
  const report = new Report();
  try {
    await body(report);
    return { ok: true, reason: null, input: false, checks: report.checks };
  } catch (error) {
    if (error instanceof Failed) return { ok: false, reason: error.message, input: false, checks: report.checks };
    const why = error instanceof InputError ? error.message : `malformed document (${error && error.message})`;
    return { ok: false, reason: why, input: true, checks: report.checks };
  }
}

// ---------------------------------------------------------------- amounts and documents

const DECIMAL = /^(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?$/;

/** auditor.formats.wire.parse_amount: exactly `decimals` decimals -> BigInt minor units. */
export function parseAmount(text, decimals) {
  const match = typeof text === "string" ? DECIMAL.exec(text) : null;
  if (!match) throw new Failed(`not a decimal string: ${clip(text)}`);
  const [, sign, whole, frac = ""] = match;
  if (frac.length !== decimals) throw new Failed(`amount ${clip(text)} must have exactly ${decimals} decimals`);
  const units = BigInt(whole + frac);
  return sign ? -units : units;
}

function amountOr(report, where, text, decimals) {
  try {
    return parseAmount(text, decimals);
  } catch (error) {
    if (error instanceof Failed) throw report.fail(where, error.message);
    throw error;
  }
}

function snapshotDecimals(snapshot) {
  const out = {};
  for (const [asset, text] of Object.entries(snapshot.reserves)) {
    const dot = text.indexOf(".");
    out[asset] = dot < 0 ? 0 : text.length - dot - 1;
  }
  return out;
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// The shape checks of the JSON schemas that a tampered document most often breaks (the
// auditor refuses those as input errors, exit 2, before verifying anything).
const AMOUNT = /^(0|[1-9][0-9]*)(\.[0-9]+)?$/;
const HEX64 = /^[0-9a-f]{64}$/;
const amountsOk = (byAsset) => isObject(byAsset) && Object.values(byAsset).every((t) => isObject(t)
  && Object.values(t).every((v) => typeof v === "string" && AMOUNT.test(v)));

// backstop-snapshot/1 has no holdings; /2 has them (docs/RESERVES.md); in /3 they are
// optional. The holdings' proofs are `backstop-audit reserves`'s business (it needs a chain
// node); here only their shape.
const FORMAT_POOLS = "backstop-snapshot/3";
const holdingListOk = (holdings) => Array.isArray(holdings)
  && holdings.every((h) => isObject(h) && (h.kind === "onchain" || h.kind === "custodian"));
const holdingsOk = (doc) => (doc.format === "backstop-snapshot/1" && !Object.hasOwn(doc, "holdings"))
  || (doc.format === "backstop-snapshot/2" && holdingListOk(doc.holdings))
  || (doc.format === FORMAT_POOLS && (!Object.hasOwn(doc, "holdings") || holdingListOk(doc.holdings)));
// The members only a /3 has (schemas/README.md "Format v2 (pools)"): their shape, as far as the
// page reads them (the pools' balances feed the sum check below); absent from /1 and /2.
const POOL_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const NULLABLE = (v) => v === null || (typeof v === "string" && AMOUNT.test(v));
const nullOr = (ok) => (v) => v === null || ok(v);
const isAmount = (v) => typeof v === "string" && AMOUNT.test(v);
const isTime = (v) => typeof v === "string" && /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$/.test(v);
const isSize = (v) => Number.isSafeInteger(v) && v >= 0;
const exactly = (v, keys) => isObject(v) && Object.keys(v).length === keys.length && keys.every((k) => Object.hasOwn(v, k));
const CLAIM_KEYS = ["asset", "total", "per_period", "period_seconds", "claimed_total", "claimed_period", "period_start"];
const claimOk = (c) => exactly(c, CLAIM_KEYS) && typeof c.asset === "string" && nullOr(isAmount)(c.total)
  && nullOr(isAmount)(c.per_period) && nullOr((v) => Number.isSafeInteger(v) && v >= 1 && v <= 31622400)(c.period_seconds)
  && isAmount(c.claimed_total) && nullOr(isAmount)(c.claimed_period) && nullOr(isTime)(c.period_start);
const ADL_KEYS = ["state", "since", "balance", "peak", "peak_index", "peak_time", "ratio"];
const adlOk = (a) => exactly(a, ADL_KEYS) && (a.state === "normal" || a.state === "adl") && nullOr(isSize)(a.since)
  && isAmount(a.balance) && isAmount(a.peak) && isSize(a.peak_index) && isTime(a.peak_time)
  && nullOr((v) => typeof v === "string" && /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(v))(a.ratio);
// snapshot.schema.json's `value` and `valuation` (backstop-snapshot/3)
const isDecimal = (v) => typeof v === "string" && /^-?[0-9]+(\.[0-9]+)?$/.test(v);
const isAsset = (v) => typeof v === "string" && /^[A-Z0-9][A-Z0-9._-]{0,31}$/.test(v);
const valueOk = (v) => exactly(v, ["raw", "after_haircut", "unvalued"]) && isAmount(v.raw)
  && isAmount(v.after_haircut) && Array.isArray(v.unvalued) && v.unvalued.every(isAsset)
  && new Set(v.unvalued).size === v.unvalued.length;
const priceOk = (p) => {
  if (!isObject(p) || !isDecimal(p.price) || !["par", "oracle", "redemption_ratio"].includes(p.source)) return false;
  const ratio = p.source === "redemption_ratio";
  const keys = ratio ? ["price", "source", "index", "ratio", "underlying"] : ["price", "source", "index"];
  return exactly(p, keys) && (ratio ? isSize(p.index) && isDecimal(p.ratio) && isAsset(p.underlying)
    : nullOr(isSize)(p.index));
};
const valuationOk = (v) => exactly(v, ["currency", "decimals", "prices", "haircuts", "total"])
  && typeof v.currency === "string" && /^[A-Z][A-Z0-9]{0,15}$/.test(v.currency)
  && Number.isSafeInteger(v.decimals) && v.decimals >= 0 && v.decimals <= 18
  && isObject(v.prices) && Object.entries(v.prices).every(([a, p]) => isAsset(a) && priceOk(p))
  && isObject(v.haircuts) && Object.entries(v.haircuts).every(([a, h]) => isAsset(a) && isDecimal(h))
  && valueOk(v.total);
const poolsOk = (doc) => {
  if (doc.format !== FORMAT_POOLS) {
    const m = isObject(doc.metrics) ? doc.metrics : {};
    return ["structure", "pools", "claims", "valuation"].every((k) => !Object.hasOwn(doc, k))
      && !Object.hasOwn(m, "pools") && (!isObject(m.markets) || Object.values(m.markets).every((v) => !isObject(v)
        || ["pool", "open_interest_value", "fund_to_oi_after_haircut"].every((k) => !Object.hasOwn(v, k))));
  }
  const s = doc.structure;
  const metrics = doc.metrics;
  return isObject(s) && isObject(s.pools) && isObject(s.markets)
    && Object.entries(s.pools).every(([p, v]) => POOL_ID.test(p) && isObject(v)
      && ["isolated", "shared", "new_listing"].includes(v.kind) && Array.isArray(v.markets))
    && Object.values(s.markets).every((v) => isObject(v) && typeof v.pool === "string")
    && isObject(doc.pools) && Object.entries(doc.pools).every(([p, v]) => POOL_ID.test(p) && isObject(v)
      && isObject(v.balances) && Object.values(v.balances).every((t) => typeof t === "string" && AMOUNT.test(t))
      && valueOk(v.value))
    && isObject(doc.claims) && Object.values(doc.claims).every(nullOr(claimOk))
    && valuationOk(doc.valuation)
    && isObject(metrics) && isObject(metrics.pools) && Object.entries(metrics.pools).every(([p, v]) => POOL_ID.test(p)
      && isObject(v) && NULLABLE(v.open_interest_value) && NULLABLE(v.fund_to_oi_after_haircut)
      && nullOr(adlOk)(v.adl))
    && (!isObject(metrics.markets) || Object.values(metrics.markets).every((v) => isObject(v)
      && typeof v.pool === "string" && NULLABLE(v.open_interest_value) && NULLABLE(v.fund_to_oi_after_haircut)));
};
// metrics.risk (optional): the members the verdict's note quotes and the model hash covers.
const riskOk = (metrics) => !isObject(metrics) || !Object.hasOwn(metrics, "risk") || (
  isObject(metrics.risk) && typeof metrics.risk.asset === "string"
  && ["es_999_deficits", "recommended_size"].every((k) => typeof metrics.risk[k] === "string"
    && AMOUNT.test(metrics.risk[k]))
  && (metrics.risk.coverage === null || (typeof metrics.risk.coverage === "string" && AMOUNT.test(metrics.risk.coverage)))
  && isObject(metrics.risk.model) && isObject(metrics.risk.model.parameters) && HEX64.test(metrics.risk.model.hash));

function requireSnapshot(doc, what) {
  const prev = isObject(doc) ? doc.previous : null;
  const ok = isObject(doc) && holdingsOk(doc) && poolsOk(doc) && riskOk(doc.metrics) && typeof doc.fund === "string"
    && isObject(doc.log) && Number.isSafeInteger(doc.log.size) && doc.log.size >= 0 && HEX64.test(doc.log.root)
    && isObject(doc.reserves) && Object.values(doc.reserves).every((v) => typeof v === "string" && AMOUNT.test(v))
    && isObject(doc.accounts) && Array.isArray(doc.accounts.assets) && amountsOk(doc.accounts.totals)
    && Number.isSafeInteger(doc.accounts.count) && doc.accounts.count >= 0 && HEX64.test(doc.accounts.root)
    && (prev === null || prev === undefined || (isObject(prev) && Number.isSafeInteger(prev.log_size)
      && HEX64.test(prev.log_root) && Array.isArray(prev.consistency) && prev.consistency.every((h) => HEX64.test(h))))
    && Array.isArray(doc.signatures) && doc.signatures.length >= 1 && doc.signatures.every((g) => isObject(g)
      && typeof g.key === "string" && /^[^\s+]+\+[0-9a-f]{8}$/.test(g.key)
      && typeof g.sig === "string" && /^[A-Za-z0-9+/]+={0,2}$/.test(g.sig));
  if (!ok) throw new InputError(`${what}: does not match snapshot.schema.json`);
}

/** The RFC 8785 bytes a snapshot's signatures sign: the document without "signatures". */
export function signedBytes(doc) {
  const rest = {};
  for (const [k, v] of Object.entries(doc)) if (k !== "signatures") rest[k] = v;
  return enc.encode(canonicalize(rest));
}

// ---------------------------------------------------------------- signatures

/** auditor.verify.keys.verify_document: the names of the pinned keys whose signature verifies. */
async function verifyDocument(doc, verifiers, require) {
  const byKey = new Map(verifiers.map((v) => [v.keyName, v]));
  const entries = doc.signatures;
  if (!Array.isArray(entries)) throw new Failed("document has no signatures list");
  const message = signedBytes(doc);
  const verified = [];
  const seen = new Set();
  for (const [pos, entry] of entries.entries()) {
    if (!isObject(entry) || typeof entry.key !== "string") throw new Failed(`signature ${pos} is malformed`);
    const v = byKey.get(entry.key);
    if (!v) continue;
    const sig = b64decode(entry.sig === undefined ? "" : entry.sig);
    if (sig === null) throw new Failed(`signature ${pos} by ${entry.key} is not base64`);
    if (!(await ed25519Verify(v.publicKey, message, sig))) {
      throw new Failed(`signature ${pos} by ${entry.key} does not verify`);
    }
    if (!seen.has(v.keyName)) { seen.add(v.keyName); verified.push(v.name); }
  }
  if (verified.length < require) {
    throw new Failed(`${verified.length} known key(s) verified, ${require} required`
      + (verified.length ? ` (verified: ${verified.join(", ")})` : ""));
  }
  return verified;
}

async function checkSignatures(report, doc, verifiers, require, what = "snapshot") {
  let names;
  try {
    names = await verifyDocument(doc, verifiers, require);
  } catch (error) {
    if (error instanceof Failed) throw report.fail(`${what} signatures`, error.message);
    throw error;
  }
  report.ok(`${what} signatures`, `${names.length} valid (${names.join(", ")}), ${require} required`);
  return names;
}

// ---------------------------------------------------------------- RFC 6962 / 9162 chains

const bitLength = (n) => (n <= 0n ? 0 : n.toString(2).length);
const bitCount = (n) => [...n.toString(2)].filter((c) => c === "1").length;

export function inclusionShape(index, size) {
  const inner = bitLength(index ^ (size - 1n));
  return [inner, bitCount(index >> BigInt(inner))];
}

export async function chainInner(seed, proof, index, node) {
  for (const [i, sibling] of proof.entries()) {
    seed = (index >> BigInt(i)) & 1n ? await node(sibling, seed) : await node(seed, sibling);
  }
  return seed;
}

async function chainInnerRight(seed, proof, index, node) {
  for (const [i, sibling] of proof.entries()) {
    if ((index >> BigInt(i)) & 1n) seed = await node(sibling, seed);
  }
  return seed;
}

export async function chainBorderRight(seed, proof, node) {
  for (const sibling of proof) seed = await node(sibling, seed);
  return seed;
}

export const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

/** auditor.verify.merkle.verify_consistency (sizes as BigInt); throws Failed with the reason. */
export async function merkleConsistency(oldSize, newSize, proof, oldRoot, newRoot) {
  if (oldSize < 0n || newSize < 0n) throw new Failed(`negative tree size ${oldSize} or ${newSize}`);
  if (oldSize > newSize) throw new Failed(`old size ${oldSize} is larger than new size ${newSize}`);
  if (oldSize === 0n) throw new Failed("consistency proof from the empty tree (old size 0) is not accepted");
  if (oldSize === newSize) {
    if (proof.length) throw new Failed(`proof has ${proof.length} hashes, expected 0 for equal sizes`);
    if (!equal(oldRoot, newRoot)) {
      throw new Failed(`root mismatch: sizes are equal but roots differ (${hexOrEmpty(oldRoot)} vs ${hexOrEmpty(newRoot)})`);
    }
    return;
  }
  const shift = bitLength(oldSize & -oldSize) - 1;
  let [inner, border] = inclusionShape(oldSize - 1n, newSize);
  const seeded = oldSize === 1n << BigInt(shift);
  const expected = (seeded ? 0 : 1) + inner - shift + border;
  if (proof.length !== expected) throw new Failed(`proof has ${proof.length} hashes, expected ${expected}`);
  proof.forEach((h, pos) => {
    if (h.length !== HASH_SIZE) throw new Failed(`proof hash ${pos} is not ${HASH_SIZE} bytes`);
  });
  const [seed, rest] = seeded ? [oldRoot, proof] : [proof[0], proof.slice(1)];
  inner -= shift;
  const mask = (oldSize - 1n) >> BigInt(shift);
  const fr = await chainBorderRight(await chainInnerRight(seed, rest.slice(0, inner), mask, nodeHash), rest.slice(inner), nodeHash);
  const sr = await chainBorderRight(await chainInner(seed, rest.slice(0, inner), mask, nodeHash), rest.slice(inner), nodeHash);
  if (!equal(fr, oldRoot)) throw new Failed(`old root mismatch: computed ${hexOrEmpty(fr)}, expected ${hexOrEmpty(oldRoot)}`);
  if (!equal(sr, newRoot)) throw new Failed(`new root mismatch: computed ${hexOrEmpty(sr)}, expected ${hexOrEmpty(newRoot)}`);
}

// ---------------------------------------------------------------- the account sum tree

function sumsBytes(sums) {
  const out = new Uint8Array(16 * sums.length);
  sums.forEach((value, pos) => {
    if (value < 0n) throw new Failed(`sum component ${pos} is negative: ${value}`);
    if (value >= SUM_LIMIT) throw new Failed(`sum component ${pos} overflows 128 bits: ${value}`);
    for (let k = 15, v = value; k >= 0; k--, v >>= 8n) out[16 * pos + k] = Number(v & 0xffn);
  });
  return out;
}

async function accountLeafHash(nonce, account, sums) {
  const accountHash = await sha256(enc.encode(account));
  return sha256(concat(Uint8Array.of(0), nonce, accountHash, sumsBytes(sums)));
}

async function sumNode(left, right) {
  const h = await sha256(concat(Uint8Array.of(1), left[0], sumsBytes(left[1]), right[0], sumsBytes(right[1])));
  const total = left[1].map((a, i) => a + right[1][i]);
  total.forEach((value, pos) => {
    if (value >= SUM_LIMIT) throw new Failed(`sum component ${pos} overflows 128 bits: ${value}`);
  });
  return [h, total];
}

/** auditor.verify.sumtree.verify_sum_proof; throws Failed with the reason. */
async function verifySumProof(leafHash, leafSums, index, count, path, root, totalSums) {
  if (!(index >= 0n && index < count)) throw new Failed(`index ${index} is beyond account count ${count}`);
  const [inner, border] = inclusionShape(index, count);
  if (path.length !== inner + border) throw new Failed(`path has ${path.length} entries, expected ${inner + border}`);
  sumsBytes(leafSums);
  path.forEach(([hash, sums], step) => {
    if (hash.length !== 32) throw new Failed(`path entry ${step}: hash is ${hash.length} bytes, expected 32`);
    if (sums.length !== leafSums.length) throw new Failed(`path entry ${step}: ${sums.length} sums, expected ${leafSums.length}`);
    sumsBytes(sums);
  });
  const [r, rSums] = await chainBorderRight(
    await chainInner([leafHash, leafSums], path.slice(0, inner), index, sumNode), path.slice(inner), sumNode);
  if (!equal(r, root)) throw new Failed(`root mismatch: computed ${toHex(r)}, expected ${toHex(root)}`);
  if (rSums.length !== totalSums.length || rSums.some((v, i) => v !== totalSums[i])) {
    throw new Failed(`totals mismatch: computed [${rSums.join(", ")}], expected [${totalSums.join(", ")}]`);
  }
}

// ---------------------------------------------------------------- what each command checks

const EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** `backstop-audit snapshot`: signatures and internal consistency (the previous link's proof). */
export function verifySnapshot(snapshot, keys, require = 1) {
  return run(async (report) => {
    const verifiers = await loadVerifiers(keys);
    requireSnapshot(snapshot, "snapshot");
    report.ok("snapshot schema");
    await checkSignatures(report, snapshot, verifiers, require);
    await checkSnapshotInternal(report, snapshot);
  });
}

/** auditor.checks._risk_note: metrics.risk's model hash, and a plain note that its figures
 * cannot be recomputed here. */
async function riskNote(report, snap) {
  const risk = isObject(snap.metrics) ? snap.metrics.risk : undefined;
  if (risk === undefined) return;
  const digest = toHex(await sha256(enc.encode(canonicalize(risk.model.parameters))));
  if (digest !== risk.model.hash) {
    throw report.fail("metrics.risk", "model.hash is not the SHA-256 of the RFC 8785 bytes of model.parameters");
  }
  checkRiskFigures(report, snap, risk);
  report.note("metrics.risk", "schema, signature and model hash checked; the figures "
    + `(ES 99.9% ${risk.es_999_deficits}, recommended size ${risk.recommended_size} ${risk.asset}, `
    + `coverage ${risk.coverage === null ? "None" : risk.coverage}) cannot be recomputed without `
    + "the exchange's positions snapshot");
}

/** auditor.formats.wire.parse_decimal, as [numerator, denominator] BigInts. */
function decimalFraction(text) {
  const match = typeof text === "string" ? DECIMAL.exec(text) : null;
  if (!match) throw new Failed(`not a decimal string: ${clip(text)}`);
  const [, sign, whole, frac = ""] = match;
  const digits = BigInt(whole + frac);
  return [sign ? -digits : digits, 10n ** BigInt(frac.length)];
}

/** auditor.formats.wire.format_decimal of num/den (both >= 0): half-even to `places`. */
export function formatRatio(num, den, places) {
  const scaled = num * 10n ** BigInt(places);
  let quotient = scaled / den;
  const twice = 2n * (scaled % den);
  if (twice > den || (twice === den && quotient % 2n === 1n)) quotient += 1n;
  const text = quotient.toString().padStart(places + 1, "0");
  return `${text.slice(0, -places)}.${text.slice(-places)}`;
}

/** auditor.checks._check_risk_figures: what the snapshot itself can contradict. */
function checkRiskFigures(report, snap, risk) {
  if (!Object.hasOwn(snap.reserves, risk.asset)) {
    throw report.fail("metrics.risk.asset", `${clip(risk.asset)} is not an asset of the snapshot's reserves`);
  }
  let probability, balance, size;
  try {
    probability = decimalFraction(risk.probability_of_socialization);
    balance = decimalFraction(risk.balance);
    size = decimalFraction(risk.recommended_size);
  } catch (error) {
    if (error instanceof Failed) throw report.fail("metrics.risk", error.message);
    throw error;
  }
  if (probability[0] < 0n || probability[0] > probability[1]) {
    throw report.fail("metrics.risk.probability_of_socialization",
      `${risk.probability_of_socialization} is not a probability (0 to 1)`);
  }
  // balance / size = (b.num * s.den) / (b.den * s.num); both are non-negative amounts here
  const expected = size[0] === 0n ? null : formatRatio(balance[0] * size[1], balance[1] * size[0], 6);
  if (risk.coverage !== expected) {
    throw report.fail("metrics.risk.coverage", `${risk.coverage === null ? "None" : risk.coverage} is not balance / `
      + `recommended size (${risk.balance} / ${risk.recommended_size} = ${expected === null ? "None" : expected})`);
  }
}

/** auditor.formats.wire.format_amount of BigInt minor units. */
function formatAmount(units, decimals) {
  const sign = units < 0n ? "-" : "";
  const digits = (units < 0n ? -units : units).toString().padStart(decimals + 1, "0");
  return decimals ? `${sign}${digits.slice(0, -decimals)}.${digits.slice(-decimals)}` : `${sign}${digits}`;
}

/** auditor.v2_snapshot.pool_sums: the first asset (sorted) whose pools in a /3 do not add up to
 * its reserves, as `pools: A sums to X, reserves.A is Y`; null when they all do. */
export function poolSums(snap) {
  const reserves = snap.reserves;
  for (const asset of Object.keys(reserves).sort()) {
    const text = reserves[asset];
    const dot = text.indexOf(".");
    const d = dot < 0 ? 0 : text.length - dot - 1;
    let total = 0n;
    try {
      for (const pool of Object.values(snap.pools)) {
        total += parseAmount(Object.hasOwn(pool.balances, asset) ? pool.balances[asset] : "missing", d);
      }
    } catch (error) {
      if (error instanceof Failed) return `pools: ${asset}: ${error.message}`;
      throw error;
    }
    if (formatAmount(total, d) !== text) {
      return `pools: ${asset} sums to ${formatAmount(total, d)}, reserves.${asset} is ${text}`;
    }
  }
  return null;
}

async function checkSnapshotInternal(report, snap) {
  await riskNote(report, snap);
  const decimals = snapshotDecimals(snap);
  for (const [asset, text] of Object.entries(snap.reserves)) {
    const units = amountOr(report, `reserves.${asset}`, text, decimals[asset]);
    if (units < 0n) throw report.fail(`reserves.${asset}`, `negative reserve ${text}`);
  }
  const acc = snap.accounts;
  const assets = acc.assets;
  const sorted = [...new Set(assets)].sort();
  if (assets.length !== sorted.length || assets.some((a, i) => a !== sorted[i])) {
    throw report.fail("accounts.assets", `${pyRepr(assets)} is not sorted and distinct`);
  }
  for (const asset of assets) {
    if (!(asset in decimals)) throw report.fail(`accounts.assets.${asset}`, "has no reserve entry (decimals unknown)");
    const totals = acc.totals[asset];
    if (!isObject(totals)) throw report.fail(`accounts.totals.${asset}`, "missing");
    for (const kind of KINDS) {
      const where = `accounts.totals.${asset}.${kind}`;
      const units = amountOr(report, where, totals[kind], decimals[asset]);
      if (units < 0n) throw report.fail(where, `negative total ${totals[kind]}`);
      if (acc.count === 0 && units) throw report.fail(where, "non-zero with no accounts");
    }
  }
  if (acc.count === 0 && acc.root !== EMPTY_ROOT) {
    throw report.fail("accounts.root", "an empty account tree must have root SHA-256('')");
  }
  if (snap.log.size === 0 && snap.log.root !== EMPTY_ROOT) {
    throw report.fail("log.root", "an empty log must have root SHA-256('')");
  }
  const pooled = snap.format === FORMAT_POOLS;
  if (pooled) { // its own arithmetic: the pools add up to reserves
    const problem = poolSums(snap);
    if (problem !== null) {
      const cut = problem.indexOf(": ");
      throw report.fail(problem.slice(0, cut), problem.slice(cut + 2));
    }
  }
  report.ok("snapshot totals", "amounts well-formed and non-negative"
    + (pooled ? "; the pools sum to the reserves" : ""));
  const prev = snap.previous;
  if (prev === null || prev === undefined) {
    report.note("previous", "none (first snapshot)");
    return;
  }
  try {
    await merkleConsistency(BigInt(prev.log_size), BigInt(snap.log.size), prev.consistency.map(fromHex),
      fromHex(prev.log_root), fromHex(snap.log.root));
  } catch (error) {
    if (error instanceof Failed) throw report.fail("previous.consistency", error.message);
    throw error;
  }
  report.ok("previous.consistency", `log of size ${prev.log_size} is a prefix of this one (${snap.log.size})`);
}

/** auditor.verify.shards.proof_from_shard: the account-proof document of `account` in a shard. */
export function proofFromShard(shard, account) {
  const fail = (why) => { throw new InputError(`account shard: ${why}`); };
  if (shard.format !== "backstop-account-shard/1") fail(`format: ${pyRepr(shard.format)} is not 'backstop-account-shard/1'`);
  const { assets, nodes, count } = shard;
  const entry = isObject(shard.accounts) ? shard.accounts[account] : undefined;
  if (entry === undefined || !Object.hasOwn(shard.accounts, account)) fail(`account ${pyRepr(account)} is not in this shard`);
  const index = entry.index;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count) || !(index >= 0 && index < count)) {
    fail(`accounts.${account}.index: ${pyRepr(index)} is not a leaf of ${pyRepr(count)}`);
  }
  const node = (row, pos) => {
    const key = `${row}/${pos}`;
    const value = nodes[key];
    if (!Object.hasOwn(nodes, key)) fail(`nodes.${key}: missing (needed by ${pyRepr(account)})`);
    if (!Array.isArray(value) || value.length !== 1 + 3 * assets.length || !value.every((v) => typeof v === "string")) {
      fail(`nodes.${key}: expected [hash, ${3 * assets.length} amount strings]`);
    }
    const sums = {};
    assets.forEach((asset, i) => {
      sums[asset] = Object.fromEntries(KINDS.map((k, j) => [k, value[1 + 3 * i + j]]));
    });
    return { hash: value[0], sums };
  };
  const path = [];
  for (let row = 0, pos = index, width = count; width > 1; row++, pos >>= 1, width = (width + 1) >> 1) {
    if ((pos ^ 1) < width) path.push(node(row, pos ^ 1));
  }
  return {
    format: "backstop-account-proof/1", fund: shard.fund, log_size: shard.log_size, account,
    nonce: entry.nonce, totals: node(0, index).sums, index, count, root: shard.root, path,
  };
}

function requireAccountProof(doc) {
  const ok = isObject(doc) && doc.format === "backstop-account-proof/1" && typeof doc.account === "string"
    && HEX64.test(doc.nonce) && amountsOk(doc.totals)
    && Number.isSafeInteger(doc.index) && doc.index >= 0 && Number.isSafeInteger(doc.count) && doc.count >= 1
    && HEX64.test(doc.root) && Array.isArray(doc.path)
    && doc.path.every((p) => isObject(p) && HEX64.test(p.hash) && amountsOk(p.sums));
  if (!ok) throw new InputError("account proof: does not match account-proof.schema.json");
}

/** `backstop-audit account`: the account's totals are a leaf of the signed snapshot's sum tree.
 * `proof` is an account-proof document, or a shard (then `account` names the account). */
export function verifyAccountProof(proof, snapshot, keys, account = null, require = 1) {
  return run(async (report) => {
    const verifiers = await loadVerifiers(keys);
    requireSnapshot(snapshot, "snapshot");
    const doc = account === null || account === "" ? proof : proofFromShard(proof, account);
    requireAccountProof(doc);
    report.ok("schemas");
    await checkSignatures(report, snapshot, verifiers, require);
    const acc = snapshot.accounts;
    if (doc.root !== acc.root) throw report.fail("root", `proof is for account root ${doc.root}, snapshot has ${acc.root}`);
    if (doc.count !== acc.count) throw report.fail("count", `proof is for ${doc.count} accounts, snapshot has ${acc.count}`);
    if ("fund" in doc && doc.fund !== snapshot.fund) {
      throw report.fail("fund", `proof is for fund ${clip(doc.fund)}, snapshot is of ${pyRepr(snapshot.fund)}`);
    }
    if ("log_size" in doc && doc.log_size !== snapshot.log.size) {
      throw report.fail("log_size", `proof is for log size ${doc.log_size}, snapshot has ${snapshot.log.size}`);
    }
    const decimals = snapshotDecimals(snapshot);
    const vector = (sums, where) => {
      const out = [];
      for (const asset of acc.assets) {
        if (!(asset in decimals)) throw report.fail(`accounts.assets.${asset}`, "has no reserve entry (decimals unknown)");
        const entry = isObject(sums) ? sums[asset] : undefined;
        if (!isObject(entry)) throw report.fail(`${where}.${asset}`, "missing");
        for (const kind of KINDS) out.push(amountOr(report, `${where}.${asset}.${kind}`, entry[kind], decimals[asset]));
      }
      return out;
    };
    const leafSums = vector(doc.totals, "totals");
    const totals = vector(acc.totals, "snapshot accounts.totals");
    const path = doc.path.map((p, i) => [fromHex(p.hash), vector(p.sums, `path.${i}.sums`)]);
    try {
      const leaf = await accountLeafHash(fromHex(doc.nonce), doc.account, leafSums);
      await verifySumProof(leaf, leafSums, BigInt(doc.index), BigInt(doc.count), path, fromHex(acc.root), totals);
    } catch (error) {
      if (error instanceof Failed) throw report.fail("sum proof", error.message);
      throw error;
    }
    report.ok("sum proof", `leaf ${doc.index} of ${doc.count} -> snapshot account root and totals`);
  });
}

/** `backstop-audit consistency`: the new snapshot's log extends the old one's. The proof is
 * `proof` (a backstop-consistency-proof/1 document) or, when null, the new snapshot's
 * `previous` link. */
export function verifyConsistency(oldSnapshot, newSnapshot, keys, proof = null, require = 1) {
  return run(async (report) => {
    const verifiers = await loadVerifiers(keys);
    requireSnapshot(oldSnapshot, "old snapshot");
    requireSnapshot(newSnapshot, "new snapshot");
    if (proof !== null && !(isObject(proof) && proof.format === "backstop-consistency-proof/1"
        && isObject(proof.old) && isObject(proof.new) && Array.isArray(proof.proof))) {
      throw new InputError("consistency proof: not a backstop-consistency-proof/1 document");
    }
    report.ok("schemas");
    await checkSignatures(report, oldSnapshot, verifiers, require, "old snapshot");
    await checkSignatures(report, newSnapshot, verifiers, require, "new snapshot");
    const a = oldSnapshot;
    const b = newSnapshot;
    if (a.fund !== b.fund) throw report.fail("fund", `old snapshot is of ${pyRepr(a.fund)}, new of ${pyRepr(b.fund)}`);
    const [oldSize, oldRoot, newSize, newRoot] = [a.log.size, a.log.root, b.log.size, b.log.root];
    let hashes;
    let source;
    if (proof !== null) {
      if (proof.old.size !== oldSize || proof.new.size !== newSize) {
        throw report.fail("proof sizes", `proof is from ${proof.old.size} to ${proof.new.size}, snapshots are ${oldSize} and ${newSize}`);
      }
      hashes = proof.proof;
      source = "--proof";
    } else {
      const prev = b.previous;
      if (prev === null || prev === undefined) throw report.fail("previous", "new snapshot has no previous link (pass --proof)");
      if (prev.log_size !== oldSize || prev.log_root !== oldRoot) {
        throw report.fail("previous", `new snapshot links to log size ${prev.log_size} root ${prev.log_root}, not the old snapshot's ${oldSize} root ${oldRoot} (pass --proof)`);
      }
      hashes = prev.consistency;
      source = "new snapshot's previous link";
    }
    try {
      await merkleConsistency(BigInt(oldSize), BigInt(newSize), hashes.map(fromHex), fromHex(oldRoot), fromHex(newRoot));
    } catch (error) {
      if (error instanceof Failed) throw report.fail("consistency", `${error.message} (history rewritten or wrong proof)`);
      throw error;
    }
    if (proof !== null) {
      for (const [side, root] of [["old", oldRoot], ["new", newRoot]]) {
        if (proof[side].root !== root) {
          throw report.fail(`proof ${side}.root`, `proof names root ${proof[side].root}, the ${side} snapshot has ${root}`);
        }
      }
    }
    report.ok("consistency", `log of size ${oldSize} is a prefix of size ${newSize} (${source})`);
  });
}
