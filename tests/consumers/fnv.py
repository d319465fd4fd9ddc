"""FNV-1a 64 by its definition, one byte at a time: the reference the C hashes are held to."""

from __future__ import annotations


def signed(value: int) -> int:
    """A uint64 as the signed 64-bit integer the stores keep."""
    return value - 2**64 if value >= 2**63 else value


def fnv1a(text: str) -> int:
    """FNV-1a 64 of the text's UTF-8 bytes, as a signed 64-bit integer."""
    hash_value = 0xCBF29CE484222325
    for byte in text.encode():
        hash_value = ((hash_value ^ byte) * 0x100000001B3) % 2**64
    return signed(hash_value)
