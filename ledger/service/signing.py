"""The operator's keys: creating one and writing its key file. The auditor reads key files
(auditor.verify.keys.Signer.from_pem) and signs only with a witness's own key; creating keys is
the operator's side (`backstop keygen`, which witnesses use too)."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.verify.keys import KEY_HEADER, Signer


def generate_signer(name: str) -> Signer:
    """A fresh random Ed25519 key named `name`."""
    return Signer(name, Ed25519PrivateKey.generate())


def key_file(signer: Signer, passphrase: bytes | None = None) -> bytes:
    """Key file: name header line + PKCS#8 PEM (encrypted if a passphrase is given)."""
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    pem = signer.private_key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8, encryption)
    return f"{KEY_HEADER}{signer.name}\n".encode() + pem
