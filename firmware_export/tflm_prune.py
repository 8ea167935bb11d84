"""TFLM's PRUNE encoding: a sparse tensor stored as a bitmask plus its non-zero values.

TFLite Micro's DECODE operator (`kernels/decode_state_prune.cc`) rebuilds a constant tensor from
two parts:

* the encoded tensor: one bit per element, in memory order, most significant bit first; a 1
  says the element differs from its channel's zero point;
* the ancillary tensor: the 16-byte DECODE common metadata (type 2 = PRUNE, DCM version 1, and
  PRUNE's own format version 1 in byte 4, `kDcmVersionOffset` in `decode_state_prune.h`),
  followed by the kept values in memory order.

So an int8 tensor of n elements at sparsity s costs n/8 + (1 - s) * n bytes instead of n. That
is where magnitude sparsity turns into flash: below the dense size once s > 1/8, below a 4-bit
LUT's n/2 once s > 5/8, below a 2-bit LUT's n/4 once s > 7/8.

What this module does: encode one int8 array (with its zero points along its channel axis)
and give the encoded size. What it does not do: choose tensors, insert DECODE operators or
write models (`firmware_export.compress` does), or decode (the real TFLM interpreter does, and
the tests compare its outputs with the uncompressed model's). The `tflite_micro` wheel ships
the PRUNE decoder in its interpreter but only a stub encoder (its `compression/pruning.py`
raises "not yet implemented"), hence this one. It never imports TensorFlow.
"""

from __future__ import annotations

import numpy as np

from firmware_export.errors import ConfigError

from firmware_export.lut import DCM_HEADER_BYTES
PRUNE_FORMAT_VERSION = 1  # checked by DecodeStatePrune::Setup at DCM byte 4


def header() -> bytes:
    """The 16-byte DECODE common metadata of a PRUNE ancillary tensor."""
    from tflite_micro.tensorflow.lite.micro.compression import decode

    return decode.DecodeCommonMetadata(decode.DecodeType.PRUNING,
                                       user_data=bytes([PRUNE_FORMAT_VERSION])).to_bytes()


def keep_mask(array: np.ndarray, zero_points: np.ndarray, axis: int) -> np.ndarray:
    """True where an element differs from its channel's zero point (same shape as `array`).

    `zero_points` has one entry per slice along `axis`, or a single entry for the whole tensor.
    """
    zp = np.asarray(zero_points).reshape(-1)
    if zp.size == 1:
        return array != zp[0]
    if zp.size != array.shape[axis]:
        raise ConfigError(f"{zp.size} zero points for {array.shape[axis]} channels on axis {axis}")
    shape = [1] * array.ndim
    shape[axis] = zp.size
    return array != zp.reshape(shape).astype(array.dtype)


def payload_bytes(num_elements: int, kept: int, itemsize: int = 1) -> int:
    """Bitmask + kept values + the DCM header: what the encoded and ancillary tensors hold."""
    return -(-num_elements // 8) + kept * itemsize + DCM_HEADER_BYTES


def encode(array: np.ndarray, zero_points: np.ndarray, axis: int = 0) -> tuple[bytes, bytes]:
    """(encoded bitmask bytes, ancillary bytes) of `array` in TFLM's PRUNE format.

    Memory order is what the decoder walks for both channel layouts it accepts (channels on
    the first axis or on the last), so the bits and values are simply in C order; only the
    zero point each element is compared with depends on `axis`.

    >>> enc, anc = encode(np.array([[0, 3], [0, 0]], np.int8), np.zeros(2, np.int8), axis=0)
    >>> enc.hex(), anc[16:].hex()
    ('40', '03')
    """
    mask = keep_mask(array, zero_points, axis).reshape(-1)
    bits = np.packbits(mask.astype(np.uint8), bitorder="big")
    values = np.ascontiguousarray(array).reshape(-1)[mask]
    return bits.tobytes(), header() + values.tobytes()
