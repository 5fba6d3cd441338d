"""EIP-191 personal_sign recovery and EIP-55 addresses against published vectors."""

from __future__ import annotations

import pytest

from auditor.verify.evm_sig import (
    AddressError,
    checksum_address,
    normalize_address,
    personal_sign_hash,
    recover_address,
)

# viem's documentation: signMessage("hello world") by Anvil's account 0 (0xf39F...2266).
HELLO = ("0xa461f509887bd19e312c0c58467ce8ff8e300d3c1a90b608a760c5b80318eaf15fe57c96f9175d6c"
         "d4daad4663763baa7e78836e067d0163e9a2ccf2ff753f5b1b")
ANVIL_0 = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"


def test_a_published_signature_recovers_to_its_address() -> None:
    assert recover_address(b"hello world", HELLO) == ANVIL_0
    assert recover_address(b"hello world!", HELLO) != ANVIL_0


def test_v_as_0_or_1_is_accepted_and_anything_else_refused() -> None:
    as_zero_one = HELLO[:-2] + "00"  # v 27 -> 0
    assert recover_address(b"hello world", as_zero_one) == ANVIL_0
    with pytest.raises(AddressError, match="signature v is 29"):
        recover_address(b"hello world", HELLO[:-2] + "1d")
    with pytest.raises(AddressError, match="130 hex digits"):
        recover_address(b"hello world", HELLO[:-2])


def test_the_eip191_hash_prefixes_the_length_in_decimal() -> None:
    """keccak256("\\x19Ethereum Signed Message:\\n11hello world"), as viem's hashMessage."""
    assert personal_sign_hash(b"hello world").hex() == (
        "d9eba16ed0ecae432b71fe008c98cc872bb4cc214d3220a36f365326cf807d68")


@pytest.mark.parametrize("address", [  # EIP-55's own test cases
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
])
def test_eip55_vectors(address: str) -> None:
    assert checksum_address(address.lower()) == address
    assert normalize_address(address) == address.lower()
    assert normalize_address(address.lower()) == address.lower()
    assert normalize_address("0x" + address[2:].upper()) == address.lower()


def test_a_mixed_case_address_with_a_wrong_checksum_is_refused() -> None:
    wrong = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"
    with pytest.raises(AddressError, match="EIP-55 checksum mismatch"):
        normalize_address(wrong)
    with pytest.raises(AddressError, match="40 hex digits"):
        normalize_address("0x1234")
