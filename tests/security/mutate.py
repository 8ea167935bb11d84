"""Seeded structural mutations of .tflite bytes, for the fuzz tests and benchmarks/fuzz_inputs.py.

`mutate(data, rng)` returns (kind, mutated bytes). Kinds: raw byte edits (bit flips, byte
overwrites, truncation, padding) and edits of the parsed model (tensor/opcode/buffer/subgraph
indices, shapes, ranks, types, quantization), rebuilt with the schema's object API.
`edit(data, fn)` applies one hand-written edit (used for the exact cases of the tests).
"""

from __future__ import annotations

import random
from typing import Callable

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

_BIG = [-2, -1, 2**31 - 1, 2**31, 2**32 - 1, 65536, 10**6]


def to_model(data: bytes):
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))


def to_bytes(m) -> bytes:
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def edit(data: bytes, fn: Callable) -> bytes:
    """Parse `data`, call fn(model) to change it, rebuild."""
    m = to_model(data)
    fn(m)
    return to_bytes(m)


def _arr(values, dtype=np.int32):
    return np.array(values, dtype=np.int64).astype(dtype, casting="unsafe")


def _model_edit(m, rng: random.Random) -> str:
    sg = m.subgraphs[0]
    t = rng.choice(sg.tensors)
    op = rng.choice(sg.operators)
    choice = rng.randrange(11)
    if choice == 0:
        ins = list(op.inputs)
        ins[rng.randrange(len(ins))] = rng.choice(_BIG + [len(sg.tensors)])
        op.inputs = _arr(ins)
        return "op input index"
    if choice == 1:
        op.outputs = _arr([rng.choice(_BIG + [len(sg.tensors)])])
        return "op output index"
    if choice == 2:
        op.opcodeIndex = rng.choice([len(m.operatorCodes), 255, 2**31, 2**32 - 1])
        return "opcode index"
    if choice == 3:
        t.buffer = rng.choice([len(m.buffers), len(m.buffers) + 7, 2**32 - 1])
        return "buffer index"
    if choice == 4:
        shape = list(t.shape) if t.shape is not None else [1]
        shape[rng.randrange(len(shape))] = rng.choice(_BIG + [0])
        t.shape = _arr(shape)
        return "shape value"
    if choice == 5:
        t.shape = _arr([rng.choice([1, 2, 3]) for _ in range(rng.choice([7, 8, 16, 64]))])
        return "rank"
    if choice == 6:
        t.shape = _arr([1, 65536, 65536, 16])
        return "huge shape"
    if choice == 7:
        t.type = rng.randrange(-5, 40)
        return "tensor type"
    if choice == 8:
        if t.quantization is not None and t.quantization.scale is not None:
            t.quantization.scale = np.array([rng.choice([0.0, float("nan"), float("inf"), 1e-30, 1e30, -1.0])]
                                            * len(t.quantization.scale), np.float32)
            return "quant scale"
        sg.inputs = _arr([])
        return "no inputs"
    if choice == 9:
        if rng.random() < 0.5:
            sg.inputs = _arr([rng.choice(_BIG)] + list(sg.inputs)[1:])
        else:
            sg.outputs = _arr([rng.choice(_BIG)] + list(sg.outputs)[1:])
        return "subgraph io index"
    if t.quantization is not None and t.quantization.zeroPoint is not None and len(t.quantization.zeroPoint) > 1:
        t.quantization.zeroPoint = t.quantization.zeroPoint[:1]
        return "zero points"
    op.inputs = _arr(list(op.inputs)[:1])
    return "op input count"


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One seeded mutation of `data`: (kind, bytes)."""
    kind = rng.randrange(6)
    b = bytearray(data)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return "bit flip", bytes(b)
    if kind == 1:
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] = rng.choice([0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        return "byte overwrite", bytes(b)
    if kind == 2:
        return "truncation", bytes(b[: rng.randrange(len(b))])
    if kind == 3:
        pad = bytes(rng.randrange(256) for _ in range(rng.choice([1, 7, 64, 4096])))
        return "padding", bytes(b) + pad
    m = to_model(data)
    what = _model_edit(m, rng)
    return what, to_bytes(m)
