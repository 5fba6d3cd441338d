"""EVM proof of control: EIP-191 ``personal_sign`` recovery and EIP-55 addresses.

The curve work is libsecp256k1's (through `coincurve`), keccak-256 is pycryptodome's: no
hand-written curve code. A signature is 65 bytes ``r || s || v`` with v = 27/28 (or 0/1, as
some hardware wallets give it), written ``0x`` + 130 hex digits.
"""

from __future__ import annotations

import re

from coincurve import PublicKey
from Crypto.Hash import keccak

__all__ = ["AddressError", "checksum_address", "keccak256", "normalize_address",
           "personal_sign_hash", "recover_address"]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")


class AddressError(ValueError):
    """An address or signature is malformed, or a mixed-case address fails its EIP-55 check."""


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's hash; not NIST SHA3-256)."""
    return keccak.new(digest_bits=256, data=data).digest()


def personal_sign_hash(message: bytes) -> bytes:
    """EIP-191 version 0x45: keccak256("\\x19Ethereum Signed Message:\\n" + len + message)."""
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


def checksum_address(address: str) -> str:
    """EIP-55 mixed-case form of a 0x + 40 hex address (any case)."""
    if not _ADDRESS.fullmatch(address):
        raise AddressError("not 0x followed by 40 hex digits")
    lower = address[2:].lower()
    digest = keccak256(lower.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c
                          for i, c in enumerate(lower))


def normalize_address(address: str) -> str:
    """The lowercase form of `address`; a mixed-case address must carry a valid EIP-55
    checksum (all-lowercase and all-uppercase hex carry none)."""
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise AddressError("not 0x followed by 40 hex digits")
    body = address[2:]
    if body != body.lower() and body != body.upper() and checksum_address(address) != address:
        raise AddressError(f"EIP-55 checksum mismatch (expected {checksum_address(address)})")
    return "0x" + body.lower()


def parse_signature(signature: str) -> bytes:
    """The 65 bytes ``r || s || recovery id`` (0/1) of a 0x-hex personal_sign signature."""
    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        raise AddressError("signature is not 0x followed by 130 hex digits")
    raw = bytes.fromhex(signature[2:])
    v = raw[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1):
        raise AddressError(f"signature v is {raw[64]}, expected 27, 28, 0 or 1")
    return raw[:64] + bytes([v])


def address_of(public_key: PublicKey) -> str:
    """The lowercase address of a secp256k1 public key: last 20 bytes of keccak256(x || y)."""
    return "0x" + keccak256(public_key.format(compressed=False)[1:])[-20:].hex()


def recover_address(message: bytes, signature: str) -> str:
    """The lowercase address whose key made `signature` (personal_sign of `message`).

    AddressError when the signature is malformed or recovers no key.
    """
    raw = parse_signature(signature)
    try:
        key = PublicKey.from_signature_and_message(raw, personal_sign_hash(message), hasher=None)
    except ValueError as exc:
        raise AddressError(f"signature recovers no key ({exc})") from None
    return address_of(key)
