// SHA-256 and Ed25519 for the verifier: the browser's WebCrypto where it has them, the
// bundled @noble libraries otherwise (a page served over plain http has no crypto.subtle;
// older browsers lack Ed25519). Nothing is fetched from anywhere.
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { ed25519 } from "@noble/curves/ed25519.js";

const subtle = globalThis.crypto && globalThis.crypto.subtle;

/** Which implementation each primitive used last (shown on the verify page). */
export const engines = { sha256: subtle ? "WebCrypto" : "@noble/hashes", ed25519: "not used yet" };

/** SHA-256 of `bytes` (Uint8Array) -> Promise<Uint8Array>. */
export async function sha256(bytes) {
  if (subtle) {
    try {
      return new Uint8Array(await subtle.digest("SHA-256", bytes));
    } catch (_) {
      engines.sha256 = "@noble/hashes";
    }
  }
  return nobleSha256(bytes);
}

let webEd25519 = subtle ? null : false; // null: not probed yet

/** Whether `signature` (64 bytes) is a valid Ed25519 signature of `message` by `publicKey`. */
export async function ed25519Verify(publicKey, message, signature) {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  if (webEd25519 !== false) {
    try {
      const key = await subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
      const ok = await subtle.verify({ name: "Ed25519" }, key, signature, message);
      webEd25519 = true;
      engines.ed25519 = "WebCrypto";
      return ok;
    } catch (error) {
      // NotSupportedError: no Ed25519 here. A key WebCrypto refuses (not a curve point) is
      // refused by noble too, so falling back never turns a failure into a success.
      if (webEd25519 === null && error && error.name === "NotSupportedError") webEd25519 = false;
    }
  }
  engines.ed25519 = "@noble/curves";
  try {
    // zip215: false is RFC 8032's strict rule, as OpenSSL (the Python auditor) applies it.
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch (_) {
    return false;
  }
}
