"""TFLM look-up-table (LUT) compression: the arithmetic of k-bit indices into per-channel tables.

A weight tensor whose every output channel holds at most 2^k distinct int8 values (for example
after weight clustering, see `tinyprune.prune.clustering`) can be stored as k-bit indices plus one small
value table per channel. The `tflite_micro.compression` package encodes that form (its
`LutCompressor`) and TFLM's DECODE operator rebuilds the int8 weights in the arena; the decoded
weights are bit-identical to the uncompressed ones.

What this module does: the checks and sizes `firmware_export.compress` needs to decide whether
LUT pays for a tensor (bits range, distinct values per channel, index width, payload bytes).
What it does not do: encode, insert DECODE operators or write models (`firmware_export.compress`
does), or use per-tensor tables (per-channel int8 scales make a per-tensor table far larger than
2^k entries, and a quick team test saw wrong outputs with them; per-channel tables are
bit-exact). Fixed-width indices cannot use sparsity: a 4-bit LUT is half the int8 bytes however
many weights are zero (`firmware_export.tflm_prune` is the format that can).
"""

from __future__ import annotations

import numpy as np

from firmware_export.errors import ConfigError

MIN_BITS, MAX_BITS = 2, 7  # tinyprune's range; the DCM bitwidth field allows 1..7 (compression/lut.py)
DCM_HEADER_BYTES = 16  # DecodeCommonMetadata header in each ancillary tensor (compression/decode.py)


def check_bits(bits: int) -> None:
    """ConfigError unless `bits` (a LUT's index width) is in MIN_BITS..MAX_BITS."""
    if not MIN_BITS <= int(bits) <= MAX_BITS:
        raise ConfigError(f"LUT index bits must be in {MIN_BITS}..{MAX_BITS}, got {bits}")


def channel_value_counts(array: np.ndarray, axis: int) -> np.ndarray:
    """Number of distinct values in each slice of `array` along `axis`."""
    moved = np.moveaxis(array, axis, 0).reshape(array.shape[axis], -1)
    return np.array([len(np.unique(row)) for row in moved], dtype=np.int64)


def index_bits_for(values: int) -> int:
    """The fewest index bits that address `values` table entries (at least 1)."""
    return max(1, int(values - 1).bit_length())


def lut_payload_bytes(num_elements: int, channels: int, bits: int, table_len: int) -> int:
    """Packed k-bit indices + one int8 table of `table_len` per channel + the DCM header."""
    return -(-num_elements * bits // 8) + channels * table_len + DCM_HEADER_BYTES
