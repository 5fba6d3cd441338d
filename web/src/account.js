// "Verify my account": find a trader's proof in the shards the site carries (by account id,
// and nonce where the operator hands them out), check it with verify.js (the auditor's
// checks, word for word), and say the outcome in plain words with the auditor's reason kept
// for the "technical reason" line. No DOM here: the shard loader is passed in.
import { proofFromShard, verifyAccountProof } from "./verify.js";

const SHARD = "backstop-account-shard/1";
const SCAN_LIMIT = 16; // shards searched for an id given without its nonce
const NAME = /^(all|[0-9a-f]{1,4})$/;
const NONCE = /^[0-9a-f]{64}$/;

/** An outcome the page shows: ok / failed / input (as verify.js), a plain sentence, the
 * auditor's reason (null when verified), the checks made and the proof document checked. */
const outcome = (kind, plain, reason = null, checks = [], doc = null) => ({ kind, plain, reason, checks, doc });

/** The plain sentence for a failed check of `doc` against the snapshot at `size`. */
export function plainReason(result, doc, size, sizes) {
  const reason = result.reason || "";
  const check = reason.split(":", 1)[0];
  if (doc && Number.isSafeInteger(doc.log_size) && doc.log_size !== size) {
    const there = sizes.includes(doc.log_size)
      ? ` Choose “log size ${doc.log_size}” in the Snapshot list to check it against its own snapshot.`
      : " This site does not show that snapshot.";
    return `This proof is for log size ${doc.log_size}, not for the snapshot chosen (log size ${size}).${there}`;
  }
  if (result.input) {
    if (/signatures|key/.test(check)) return "The operator's key in use (section 1) cannot be read.";
    return "This is not an account proof this page can read: use the file the operator gave you "
      + "(backstop prove account), or type your account id and leave the file box empty.";
  }
  if (/signatures$/.test(check)) {
    return "The snapshot's signature does not verify with the key in use (section 1): it was not "
      + "signed by that operator key.";
  }
  if (check === "root" || check === "count") {
    return "This proof was made for another account tree than this snapshot's: another "
      + "snapshot's proof, or one that was changed.";
  }
  if (check === "fund") return "This proof is for another fund.";
  if (check === "sum proof") {
    return "These figures do not lead to the account root the operator signed: the proof was "
      + "changed, or the operator's signed tree does not hold your account with these totals. "
      + "Do not rely on them; keep the file and raise it with the operator.";
  }
  return "The proof does not check out against this snapshot.";
}

/** The shards to search for `account` in a snapshot's listing, or an outcome saying why not. */
function candidates(listing, nonce, size) {
  if (listing.digits === 0) return { names: listing.names };
  if (nonce) {
    const name = nonce.slice(0, listing.digits);
    return { names: listing.names.includes(name) ? [name] : [] };
  }
  if (listing.names.length <= SCAN_LIMIT) return { names: listing.names };
  return { stop: outcome("input", `The proofs of the snapshot at log size ${size} are split by nonce `
    + `into ${listing.names.length} files: type the nonce the operator gave you with your account id.`) };
}

/** Near misses of `account` among a shard's ids (case, surrounding spaces). */
function nearMiss(shards, account) {
  const want = account.trim().toLowerCase();
  for (const shard of shards) {
    const found = Object.keys(shard.accounts).find((id) => id.toLowerCase() === want && id !== account);
    if (found !== undefined) return found;
  }
  return null;
}

/**
 * Verify `account` at snapshot `snap` (a site.snapshots entry) from the shards the site
 * carries. `load(size, name)` resolves to a shard document. `sizes`: the snapshots the site
 * shows. `nonce`: "" when the trader has none.
 */
export async function verifyById(snap, account, nonce, keys, load, sizes) {
  if (!account) return outcome("input", "Type your account id first.");
  if (nonce && !NONCE.test(nonce)) {
    return outcome("input", "A nonce is 64 hexadecimal digits (0-9, a-f); check what the operator gave you.");
  }
  const listing = snap.shards;
  if (!listing) {
    const carried = sizes.filter((s) => s.shards).map((s) => `log size ${s.size}`);
    return outcome("input", `This site does not carry the account proofs of the snapshot at log size ${snap.size}`
      + (carried.length ? ` (it carries those of ${carried.join(", ")})` : "")
      + `. Ask the operator for yours (backstop prove account ID --size ${snap.size}), or take the `
      + `shard from the published log: snapshots/${snap.size}/accounts/, and drop it below.`);
  }
  const { names, stop } = candidates(listing, nonce, snap.size);
  if (stop) return stop;
  const searched = [];
  for (const name of names) {
    if (!NAME.test(name)) continue;
    const shard = await load(snap.size, name);
    searched.push(shard);
    if (shard && shard.accounts && Object.hasOwn(shard.accounts, account)) {
      return verifyShardEntry(shard, account, nonce, snap, keys, sizes);
    }
  }
  const near = nearMiss(searched, account);
  return outcome("input", `Account “${account}” is not in the snapshot at log size ${snap.size}`
    + ` (${listing.accounts} accounts). Check the id: it must be exactly as the exchange shows it`
    + `${near ? ` (did you mean “${near}”?)` : ""}${nonce ? ", and the nonce too" : ""}. An account with `
    + "no fees, payouts or clawbacks yet is not in the tree.",
  `account shard: account '${account}' is not in this shard`);
}

/** A shard holding `account`: check the nonce the trader was given, then the proof. */
async function verifyShardEntry(shard, account, nonce, snap, keys, sizes) {
  const entry = shard.accounts[account];
  if (nonce && entry && entry.nonce !== nonce) {
    return outcome("failed", `The published proof of “${account}” carries another nonce than the `
      + "one the operator gave you: it is not the proof of your account as you were told it.",
    `nonce: the shard has ${entry.nonce}, you gave ${nonce}`);
  }
  return verifyDocument(shard, account, snap, keys, sizes);
}

/** Verify a proof document (or a shard, with `account`) pasted or dropped by the trader. */
export async function verifyDocument(doc, account, snap, keys, sizes) {
  const isShard = doc && typeof doc === "object" && doc.format === SHARD;
  if (isShard && !account) {
    const n = doc.accounts && typeof doc.accounts === "object" ? Object.keys(doc.accounts).length : 0;
    return outcome("input", `This file is a shard: it holds the proofs of ${n} accounts. Type your `
      + "account id above to find yours in it.", "account proof: does not match account-proof.schema.json");
  }
  if (isShard && !(doc.accounts && Object.hasOwn(doc.accounts, account))) {
    return outcome("input", `Account “${account}” is not in this shard: check the id, or the shard `
      + "is another part of the snapshot's accounts (its file is named by your nonce's first digits).",
    `account shard: account '${account}' is not in this shard`);
  }
  if (!isShard && account && doc && typeof doc === "object" && typeof doc.account === "string"
      && doc.account !== account) {
    return outcome("input", `This proof is of account “${doc.account}”, not of the id typed above `
      + `(“${account}”): clear the id, or use your own proof.`, null, [], doc);
  }
  const result = await verifyAccountProof(doc, snap.doc, keys, isShard ? account : null);
  let proof = isShard ? null : doc;
  if (isShard) {
    try {
      proof = proofFromShard(doc, account);
    } catch { proof = null; } // malformed: the verifier's reason says how
  }
  const checked = proof || doc;
  if (result.ok) return outcome("ok", "", null, result.checks, checked);
  return outcome(result.input ? "input" : "failed",
    plainReason(result, checked, snap.size, sizes.map((s) => s.size)), result.reason, result.checks, checked);
}
