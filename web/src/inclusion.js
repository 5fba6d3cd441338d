// The RFC 9162 §2.1.3.2 inclusion proof of a plain leaf hash, in the browser verifier's terms:
// the same shape and folds (verify.js) that its account sum proofs walk, with the checks and
// the reasons of auditor.verify.merkle.verify_inclusion, word for word. The page uses it to
// check receipts (web/src/receipt.js); the RFC 6962 vectors test it under Node
// (tests/vectors/verify_vectors.mjs).
import { chainBorderRight, chainInner, equal, hexOrEmpty, inclusionShape, nodeHash } from "./verify.js";

const HASH_SIZE = 32;

/** Resolves when `proof` (Uint8Array hashes) takes `leafHash`, leaf `index` of a tree of
 * `size` leaves (both BigInt), to `root`; else rejects with an Error naming the reason. */
export async function merkleInclusion(leafHash, index, size, proof, root) {
  if (index < 0n || size < 0n) throw new Error(`negative index ${index} or size ${size}`);
  if (index >= size) throw new Error(`index ${index} is beyond tree size ${size}`);
  if (leafHash.length !== HASH_SIZE) throw new Error(`leaf hash is ${leafHash.length} bytes, expected ${HASH_SIZE}`);
  const [inner, border] = inclusionShape(index, size);
  if (proof.length !== inner + border) throw new Error(`proof has ${proof.length} hashes, expected ${inner + border}`);
  proof.forEach((h, pos) => {
    if (h.length !== HASH_SIZE) throw new Error(`proof hash ${pos} is not ${HASH_SIZE} bytes`);
  });
  const r = await chainBorderRight(
    await chainInner(leafHash, proof.slice(0, inner), index, nodeHash), proof.slice(inner), nodeHash);
  if (!equal(r, root)) throw new Error(`root mismatch: computed ${hexOrEmpty(r)}, expected ${hexOrEmpty(root)}`);
}
