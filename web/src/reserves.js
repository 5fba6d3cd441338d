// The proof of reserves, as far as a browser can check it (docs/RESERVES.md): each holding's
// signature binds it to this snapshot. On-chain: the EIP-191 personal_sign of the snapshot's
// challenge recovers to the holding's address (@noble/curves' secp256k1, keccak-256 from
// @noble/hashes). Custodian: the statement's Ed25519 signature by a key the visitor pinned.
// The same checks, in the same order and words, as auditor/reserves.py, except the balances:
// whether an address holds its claim on chain needs a node (`backstop-audit reserves --rpc`),
// so here a verified holding is a *signed claim*, and the ratio is signed claims / reserve.
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { ed25519Verify } from "./crypto.js";
import { b64decode, formatRatio, parseAmount, parseVerifierKey, verifySnapshot } from "./verify.js";

const enc = new TextEncoder();
const RATIO_PLACES = 6;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const SIGNATURE = /^0x[0-9a-fA-F]{130}$/;

class HoldingError extends Error {}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** auditor.verify.holdings.challenge_text of a snapshot (five lines, no trailing newline). */
export function snapshotChallenge(snap) {
  return ["Backstop proof of reserves", `fund: ${snap.fund}`, `log size: ${snap.log.size}`,
    `log root: ${snap.log.root}`, `time: ${snap.time}`].join("\n");
}

function statementText(snap, h) {
  return [`Backstop custodian statement`, `fund: ${snap.fund}`, `log size: ${snap.log.size}`,
    `log root: ${snap.log.root}`, `time: ${snap.time}`, `custodian: ${h.custodian}`,
    `account: ${h.account}`, `asset: ${h.asset}`, `amount: ${h.amount}`, `as of: ${h.as_of}`].join("\n");
}

/** EIP-55 mixed-case form of a 0x + 40 hex address. */
export function checksumAddress(address) {
  if (typeof address !== "string" || !ADDRESS.test(address)) throw new HoldingError("not 0x followed by 40 hex digits");
  const lower = address.slice(2).toLowerCase();
  const digest = hex(keccak_256(enc.encode(lower)));
  return "0x" + [...lower].map((c, i) => (/[a-f]/.test(c) && parseInt(digest[i], 16) >= 8 ? c.toUpperCase() : c)).join("");
}

/** auditor.verify.evm_sig.normalize_address: lowercase; mixed case must pass EIP-55. */
function normalizeAddress(address) {
  if (typeof address !== "string" || !ADDRESS.test(address)) throw new HoldingError("not 0x followed by 40 hex digits");
  const body = address.slice(2);
  if (body !== body.toLowerCase() && body !== body.toUpperCase() && checksumAddress(address) !== address) {
    throw new HoldingError(`EIP-55 checksum mismatch (expected ${checksumAddress(address)})`);
  }
  return "0x" + body.toLowerCase();
}

/** The lowercase address whose key made `signature`, a personal_sign of `message` (bytes). */
export function recoverAddress(message, signature) {
  if (typeof signature !== "string" || !SIGNATURE.test(signature)) {
    throw new HoldingError("signature is not 0x followed by 130 hex digits");
  }
  const raw = Uint8Array.from(signature.slice(2).match(/../g), (b) => parseInt(b, 16));
  let v = raw[64];
  if (v === 27 || v === 28) v -= 27;
  if (v !== 0 && v !== 1) throw new HoldingError(`signature v is ${raw[64]}, expected 27, 28, 0 or 1`);
  const prefix = enc.encode(`\x19Ethereum Signed Message:\n${message.length}`);
  const digest = keccak_256(new Uint8Array([...prefix, ...message]));
  let point;
  try {
    const sig = secp256k1.Signature.fromBytes(new Uint8Array([v, ...raw.slice(0, 64)]), "recovered");
    point = sig.recoverPublicKey(digest).toBytes(false);
  } catch (error) {
    throw new HoldingError(`signature recovers no key (${error.message})`);
  }
  return "0x" + hex(keccak_256(point.slice(1)).slice(-20));
}

function describe(h) {
  if (h.kind === "onchain") {
    return `${h.asset} ${h.amount} at ${h.address} (${h.token || "native coin"}) on ${h.chain} block ${h.block}`;
  }
  return `${h.asset} ${h.amount} at custodian ${h.custodian} account ${h.account}`;
}

function holdingKey(h) {
  if (h.kind === "onchain") {
    return ["onchain", h.chain, normalizeAddress(h.address), h.token === null ? "" : normalizeAddress(h.token)].join("\u0000");
  }
  return ["custodian", h.custodian, h.account, h.asset].join("\u0000");
}

async function checkHolding(snap, h, units, pinned) {
  if (h.kind === "onchain") {
    const address = normalizeAddress(h.address);
    let signer;
    try {
      signer = recoverAddress(enc.encode(snapshotChallenge(snap)), h.signature);
    } catch (error) {
      if (error instanceof HoldingError) return `signature: ${error.message}`;
      throw error;
    }
    if (signer !== address) {
      return `signature: recovers to ${checksumAddress(signer)}, not the holding's address (signed by another key, or for another snapshot)`;
    }
    return null;
  }
  const key = pinned.get(h.key);
  if (!key) return `key ${h.key} is not pinned (--custodian-key)`;
  if (key.name !== h.custodian) return `key ${h.key} is not the key of custodian ${h.custodian}`;
  const raw = b64decode(h.signature);
  if (raw === null) return "signature is not base64";
  if (!(await ed25519Verify(key.publicKey, enc.encode(statementText(snap, h)), raw))) {
    return "statement signature does not verify (for this snapshot)";
  }
  return null;
}

/**
 * Check a snapshot's holdings against the operator's keys and the custodian keys the visitor
 * pinned. Resolves to verify.js's {ok, reason, input, checks} (the snapshot's own checks
 * first), plus `holdings` ([{index, describe, ok, reason}]) and `assets` ({ASSET: {reserve,
 * signed, ratio}}): `signed` sums the holdings whose signature verified; `ratio` is signed /
 * reserve, 6 decimals half-even, null when the reserve is 0. Not checked here, ever: the
 * balances on chain, the token contracts, the blocks' times (`backstop-audit reserves`).
 */
export async function verifyHoldings(snap, keys, custodianKeys = [], require = 1) {
  const base = await verifySnapshot(snap, keys, require);
  const result = { ...base, holdings: [], assets: {} };
  if (!base.ok) return result;
  const pinned = new Map();
  const operators = new Set();
  try {
    for (const k of Array.isArray(keys) ? keys : [keys]) {
      for (const line of String(k).split(/\r?\n/).filter((l) => l.trim())) operators.add(hex((await parseVerifierKey(line)).publicKey));
    }
    for (const text of custodianKeys) {
      for (const line of String(text).split(/\r?\n/).filter((l) => l.trim())) {
        const key = await parseVerifierKey(line);
        if (operators.has(hex(key.publicKey))) {
          throw new Error(`--custodian-key ${key.keyName}: is the operator's own key (--key); pin each custodian's key from the custodian`);
        }
        pinned.set(key.keyName, key);
      }
    }
  } catch (error) {
    return { ...result, ok: false, input: true, reason: error.message.startsWith("--custodian-key") ? error.message : `--custodian-key: ${error.message}` };
  }
  const checks = [...base.checks];
  const fail = (reason) => ({ ...result, ok: false, input: false, reason, checks });
  if (!Object.hasOwn(snap, "holdings")) {
    checks.push({ check: "holdings", ok: false, detail: `none: a ${snap.format} snapshot carries no proof of reserves (backstop-snapshot/2 does)` });
    return fail(`holdings: ${checks.at(-1).detail}`);
  }
  if (!snap.holdings.length) {
    checks.push({ check: "holdings", ok: false, detail: "none listed: no reserve is proven" });
    return fail("holdings: none listed: no reserve is proven");
  }
  const decimals = {};
  for (const [asset, text] of Object.entries(snap.reserves)) decimals[asset] = text.includes(".") ? text.length - text.indexOf(".") - 1 : 0;
  const signed = Object.fromEntries(Object.keys(decimals).map((a) => [a, 0n]));
  const seen = new Map();
  const failures = [];
  for (const [index, h] of snap.holdings.entries()) {
    const name = `holdings[${index}]`;
    let why = null;
    let units = 0n;
    if (!Object.hasOwn(decimals, h.asset)) {
      why = `wrong asset: ${h.asset} is not one of the fund's assets (${Object.keys(decimals).sort().join(", ")})`;
    }
    if (why === null) {
      try {
        units = parseAmount(h.amount, decimals[h.asset]);
      } catch (error) {
        why = `amount: ${error.message}`;
      }
    }
    if (why === null) {
      let key = null;
      try {
        key = holdingKey(h);
      } catch (error) {
        if (!(error instanceof HoldingError)) throw error;
        why = `address: ${error.message}`;
      }
      if (key !== null && seen.has(key)) {
        why = `counted twice: the same ${h.kind === "onchain" ? "address and token" : "custodian account"} as holdings[${seen.get(key)}]`;
      } else if (key !== null) {
        seen.set(key, index);
      }
    }
    if (why === null) why = await checkHolding(snap, h, units, pinned);
    if (why === null) {
      signed[h.asset] += units;
      const detail = `${describe(h)}: ${h.kind === "onchain" ? "signature verified (the balance on chain is not checked here)" : "custodian statement verified"}`;
      checks.push({ check: name, ok: true, detail });
    } else {
      checks.push({ check: name, ok: false, detail: `${describe(h)}: ${why}` });
      failures.push(`${name}: ${why}`);
    }
    result.holdings.push({ index, describe: describe(h), kind: h.kind, asset: h.asset, amount: h.amount, ok: why === null, reason: why });
  }
  for (const asset of Object.keys(decimals).sort()) {
    const reserve = parseAmount(snap.reserves[asset], decimals[asset]);
    const have = signed[asset];
    const shown = formatUnits(have, decimals[asset]);
    const ratio = reserve === 0n ? null : formatRatio(have, reserve, RATIO_PLACES);
    result.assets[asset] = { reserve: snap.reserves[asset], signed: shown, ratio };
    const detail = `verified holdings ${shown} vs reserve ${snap.reserves[asset]}${ratio === null ? "" : ` (ratio ${ratio})`}`;
    if (have >= reserve) checks.push({ check: `reserves.${asset}`, ok: true, detail });
    else {
      checks.push({ check: `reserves.${asset}`, ok: false, detail: `${detail}: not covered` });
      failures.push(`reserves.${asset}: ${detail}: not covered`);
    }
  }
  if (failures.length) {
    const more = failures.length > 1 ? ` (and ${failures.length - 1} more failure(s) above)` : "";
    return { ...result, ok: false, input: false, reason: failures[0] + more, checks };
  }
  return { ...result, checks };
}

function formatUnits(units, decimals) {
  const sign = units < 0n ? "-" : "";
  const text = (units < 0n ? -units : units).toString().padStart(decimals + 1, "0");
  return decimals ? `${sign}${text.slice(0, -decimals)}.${text.slice(-decimals)}` : `${sign}${text}`;
}

