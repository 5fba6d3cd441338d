"""The operator's keys: creating one, writing its key file, loading it to sign. The auditor
reads key files (auditor.verify.keys.Signer.from_pem) and signs only with a witness's own key;
creating keys is the operator's side (`backstop keygen`, which witnesses use too)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.verify.keys import KEY_HEADER, PASSPHRASE_ENV, KeyFormatError, Signer


class KeyFileError(ValueError):
    """A key file that cannot be read or opened: `PATH: reason` (the CLI adds the option)."""


def env_passphrase() -> bytes | None:
    """The key files' passphrase from $BACKSTOP_KEY_PASSPHRASE, if set."""
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


def load_signer(path: Path) -> Signer:
    """Load a private key file written by `backstop keygen` (passphrase from the env)."""
    try:
        return Signer.from_pem(path.read_bytes(), passphrase=env_passphrase())
    except (KeyFormatError, OSError, UnicodeDecodeError) as error:
        hint = f" (set ${PASSPHRASE_ENV} for an encrypted key)" if "password" in str(error).lower() \
            or "encrypted" in str(error).lower() else ""
        raise KeyFileError(f"{path}: {error}{hint}") from None


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
