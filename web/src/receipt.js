// A receipt (C2SP tlog-proof, schemas/README.md "Receipts") checked in the browser, with no
// network: the checks of `backstop-audit receipt` (auditor/receipt.py) in the same order and
// words, short of witness cosignatures (the page pins no witness key). The verdict is
// verify.js's {ok, reason, input, checks} plus `figures` (origin, log_size, index, type, time,
// ref, and account, asset, amount for a payout or clawback).
import canonicalize from "canonicalize";
import { ed25519Verify, sha256 } from "./crypto.js";
import { b64decode, clip, equal, parseVerifierKey } from "./verify.js";
import { merkleInclusion } from "./inclusion.js";

const HEADER = "c2sp.org/tlog-proof@v1";
const MAX_PROOF_HASHES = 64;
const MAX_SIGNATURES = 100;
const SIG_PREFIX = "\u2014 ";
const KINDS = { deficit_covered: "payout", clawback_charged: "clawback" };
const enc = new TextEncoder();

class Failed extends Error {}
class InputError extends Error {}

/** auditor.verify.receipt.parse_receipt: {entry, index, proof, checkpoint} or InputError. */
export function parseReceipt(text) {
  const lines = text.split("\n");
  if (lines[0] !== HEADER) throw new InputError(`line 1: expected '${HEADER}', got ${clip(lines[0])}`);
  if (lines.length < 2 || !lines[1].startsWith("extra ")) {
    throw new InputError("line 2: expected 'extra ' and the event's line in base64 (a Backstop receipt carries its event)");
  }
  const entry = b64decode(lines[1].slice("extra ".length));
  if (!entry || !entry.length) throw new InputError("line 2: extra: not base64 of a non-empty event line");
  const match = lines.length > 2 ? /^index (0|[1-9][0-9]{0,19})$/.exec(lines[2]) : null;
  if (!match) throw new InputError(`line 3: expected 'index N' (decimal, no leading zero), got ${clip(lines.length > 2 ? lines[2] : "")}`);
  const proof = [];
  let number = 3;
  while (number < lines.length && lines[number] !== "") {
    const digest = b64decode(lines[number]);
    if (digest === null || digest.length !== 32) {
      throw new InputError(`line ${number + 1}: not a base64 SHA-256 hash of the inclusion proof`);
    }
    proof.push(digest);
    number += 1;
    if (proof.length > MAX_PROOF_HASHES) throw new InputError(`line ${number}: more than ${MAX_PROOF_HASHES} proof hashes`);
  }
  if (number >= lines.length) throw new InputError(`line ${number + 1}: no empty line before the checkpoint`);
  const checkpoint = lines.slice(number + 1).join("\n");
  if (!checkpoint.trim()) throw new InputError(`line ${number + 2}: no checkpoint after the empty line`);
  if (!checkpoint.endsWith("\n")) throw new InputError("the checkpoint does not end with a newline");
  return { entry, index: BigInt(match[1]), proof, checkpoint };
}

const validName = (name) => name.length > 0 && !name.includes("+") && !/[\s\u0000-\u001f]/u.test(name);

/** auditor.verify.keys.open_note: [body, names verified] or a Failed with its reason. */
async function openNote(note, verifiers) {
  if (/[\u0000-\u0009\u000b-\u001f]/.test(note)) throw new Failed("malformed note: control character");
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new Failed("malformed note: no blank line before the signatures");
  const body = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (!block || !block.endsWith("\n")) throw new Failed("malformed note: signature block missing or not newline-terminated");
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) throw new Failed(`malformed note: more than ${MAX_SIGNATURES} signatures`);
  const verified = [];
  const seen = new Set();
  for (const [i, line] of lines.entries()) {
    const n = i + 1;
    if (!line.startsWith(SIG_PREFIX)) throw new Failed(`malformed note: signature line ${n} does not start with '\u2014 '`);
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(" ");
    const name = space < 0 ? rest : rest.slice(0, space);
    const raw = space < 0 ? null : b64decode(rest.slice(space + 1));
    if (space < 0 || !validName(name) || !raw || raw.length < 5) {
      throw new Failed(`malformed note: signature line ${n} is not 'name base64'`);
    }
    const kid = raw.slice(0, 4);
    const key = verifiers.find((v) => v.name === name && equal(v.keyId, kid));
    if (!key) continue;
    if (!(await ed25519Verify(key.publicKey, enc.encode(body), raw.slice(4)))) {
      throw new Failed(`invalid signature for key ${key.keyName} (signature line ${n})`);
    }
    if (!seen.has(key.keyName)) {
      seen.add(key.keyName);
      verified.push(name);
    }
  }
  if (!verified.length) throw new Failed("note has no verifiable signatures from a known key");
  return [body, verified];
}

/** auditor.verify.keys.parse_checkpoint. */
function parseCheckpoint(body) {
  const lines = body.slice(0, -1).split("\n");
  if (lines.length < 3) throw new Failed(`checkpoint has ${lines.length} lines, expected at least 3`);
  const [origin, sizeText, rootText] = lines;
  if (!origin) throw new Failed("checkpoint origin is empty");
  if (!/^(0|[1-9][0-9]{0,19})$/.test(sizeText) || BigInt(sizeText) > (1n << 64n) - 1n) {
    throw new Failed(`checkpoint size ${clip(sizeText)} is not a decimal uint64`);
  }
  const root = b64decode(rootText);
  if (root === null) throw new Failed(`checkpoint root ${clip(rootText)} is not base64`);
  if (root.length !== 32) throw new Failed(`checkpoint root is ${root.length} bytes, expected 32`);
  return [origin, BigInt(sizeText), root];
}

/**
 * Check a receipt's text against the operator's verifier keys (strings, C2SP form). `name` is
 * how an input error names the receipt (the auditor names its path).
 */
export async function verifyReceipt(text, keys, name = "(pasted)", require = 1) {
  const checks = [];
  const figures = {};
  const ok = (check, detail) => checks.push({ check, ok: true, detail });
  const fail = (check, reason) => {
    checks.push({ check, ok: false, detail: reason });
    return new Failed(`${check}: ${reason}`);
  };
  try {
    const verifiers = [];
    for (const k of keys) {
      for (const line of String(k).split(/\r?\n/).filter((l) => l.trim())) {
        let v;
        try {
          v = await parseVerifierKey(line);
        } catch (error) {
          throw new InputError(`key: ${error.message}`);
        }
        verifiers.push({ ...v, keyId: Uint8Array.from(v.keyName.split("+")[1].match(/../g), (h) => parseInt(h, 16)) });
      }
    }
    if (!verifiers.length) throw new InputError("no verifier key given (--key)");
    let parsed;
    try {
      parsed = parseReceipt(text);
    } catch (error) {
      if (error instanceof InputError) throw new InputError(`receipt ${name}: ${error.message}`);
      throw error;
    }
    ok("receipt format", `c2sp.org/tlog-proof@v1, index ${parsed.index}, ${parsed.proof.length} proof hash(es)`);
    let body;
    let names;
    try {
      [body, names] = await openNote(parsed.checkpoint, verifiers);
    } catch (error) {
      if (error instanceof Failed) throw fail("checkpoint signature", error.message);
      throw error;
    }
    if (new Set(names).size < require) throw fail("checkpoint signature", `${new Set(names).size} known key(s) verified, ${require} required`);
    ok("checkpoint signature", `${names.length} valid (${names.join(", ")})`);
    let origin;
    let size;
    let root;
    try {
      [origin, size, root] = parseCheckpoint(body);
    } catch (error) {
      if (error instanceof Failed) throw fail("checkpoint body", error.message);
      throw error;
    }
    ok("checkpoint body", `${origin} size ${size}`);
    const leaf = await sha256(new Uint8Array([0, ...parsed.entry]));
    try {
      await merkleInclusion(leaf, parsed.index, size, parsed.proof, root);
    } catch (error) {
      throw fail("inclusion", error.message);
    }
    ok("inclusion", `entry ${parsed.index} is in the log of ${size} events`);
    let event;
    try {
      event = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(parsed.entry));
    } catch (error) {
      throw fail("event", `the entry is not JSON: ${error.message}`);
    }
    const shaped = event && typeof event === "object" && !Array.isArray(event) && typeof event.type === "string"
      && typeof event.fund === "string" && event.data && typeof event.data === "object";
    if (!shaped) throw fail("event", "the entry is not an event: not an event object");
    if (!equal(enc.encode(canonicalize(event)), parsed.entry)) {
      throw fail("event", "the entry is not the event's canonical (RFC 8785) line");
    }
    if (BigInt(Number.isSafeInteger(event.index) ? event.index : -1) !== parsed.index) {
      throw fail("event", `the event's index ${event.index ?? "None"} is not the receipt's ${parsed.index}`);
    }
    // schemas/README.md "Origin": the legacy origin, the derived one under a key that verified
    // the checkpoint, or that key's name (auditor.verify.origin.origins_of)
    const origins = new Set([`backstop/${event.fund}`]);
    for (const v of verifiers.filter((k) => names.includes(k.name))) {
      const digest = Array.from(await sha256(v.publicKey), (b) => b.toString(16).padStart(2, "0")).join("");
      origins.add(`backstop/${event.fund}/${digest.slice(0, 16)}`);
      origins.add(v.name);
    }
    if (!origins.has(origin)) {
      throw fail("origin", `${clip(origin)} is not a log of fund ${clip(event.fund)} under the pinned key (schemas/README.md, Origin)`);
    }
    const kind = KINDS[event.type];
    ok("event", `${kind || event.type} at index ${parsed.index}`);
    Object.assign(figures, { origin, log_size: Number(size), index: Number(parsed.index), type: event.type,
      time: event.time, ref: event.ref });
    if (kind) Object.assign(figures, { account: event.data.account, asset: event.data.asset, amount: event.data.amount });
    return { ok: true, input: false, reason: null, checks, figures };
  } catch (error) {
    if (error instanceof Failed) return { ok: false, input: false, reason: error.message, checks, figures };
    const why = error instanceof InputError ? error.message : `malformed receipt (${error && error.message})`;
    return { ok: false, input: true, reason: why, checks, figures };
  }
}
