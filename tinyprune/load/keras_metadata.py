"""Read a tf_keras SavedModel's `keras_metadata.pb` as protobuf wire format, without TensorFlow.

The file is a `SavedMetadata` message (tf_keras/protobuf/saved_metadata.proto):

    message SavedMetadata { repeated SavedObject nodes = 1; }
    message SavedObject { int32 node_id = 2; string node_path = 3; string identifier = 4;
                          string metadata = 5; VersionDef version = 6; }

`read_nodes(data)` returns every node as a `MetadataNode`, with its `metadata` JSON text parsed.
It reads the wire format strictly (a truncated varint, a length past the end, a wire type the
schema cannot have, text that is not UTF-8: `ModelLoadError`), and when a node carries a field
more than once (protobuf keeps the last), every copy is returned, so a check over all of them
covers what tf_keras will read. It decides nothing about safety (`tinyprune.load.safety`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator

from tinyprune.errors import ModelLoadError

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_NODES, _NODE_PATH, _IDENTIFIER, _METADATA = 1, 3, 4, 5


@dataclass
class MetadataNode:
    """One SavedObject: where it sits, what kind it is, and its parsed metadata (all copies)."""

    node_path: str = ""
    identifier: str = ""
    metadata: list[Any] = field(default_factory=list)  # parsed JSON of every `metadata` field


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message; LEN values are bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire == _I64:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == _I32:
            value, pos = data[pos:pos + 4], pos + 4
        elif wire == _LEN:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        else:
            raise ValueError(f"wire type {wire}")
        if pos > len(data):
            raise ValueError("field runs past the end")
        yield number, wire, value


def read_nodes(data: bytes, source: str = "keras_metadata.pb") -> list[MetadataNode]:
    """Every node of a SavedMetadata message, metadata JSON parsed. Raises ModelLoadError."""
    try:
        nodes = []
        for number, wire, value in _fields(data):
            if number != _NODES:
                continue
            if wire != _LEN:
                raise ValueError("nodes field is not a message")
            node = MetadataNode()
            for n, w, v in _fields(value):
                if n in (_NODE_PATH, _IDENTIFIER, _METADATA):
                    if w != _LEN:
                        raise ValueError(f"string field {n} has wire type {w}")
                    text = v.decode("utf-8")  # strict, as protobuf is for `string`
                    if n == _NODE_PATH:
                        node.node_path = text
                    elif n == _IDENTIFIER:
                        node.identifier = text
                    else:
                        node.metadata.append(json.loads(text) if text else {})
            nodes.append(node)
        return nodes
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ModelLoadError(f"{source} is not a readable Keras metadata file ({e}); "
                             "re-save the model with model.save(folder) from tf_keras") from None
