"""Joint choice of channel removal and TFLM-decoded compression (PRUNE, LUT) per layer.

With `allow_compress`, the budget allocator (allocation.py) may, besides removing channels,
compress single Conv2D / Dense kernels that TFLM's DECODE operator rebuilds at run time:

* `prune@s`: the fraction `s` of the layer's smallest |w| set to zero and stored as TFLM PRUNE
  (a 1-bit mask per weight + the non-zero values); the zeros are kept during fine-tuning;
* `lut@b`: the layer's kernel clustered to 2^b values per output channel (1-D k-means after
  fine-tuning) and stored as TFLM LUT (b-bit indices + a table per channel).

Each move's accuracy cost is measured like channel sensitivity (the change applied to one layer
of a copy, training score drop, no fine-tuning, on the unpruned model); its flash saving is
the payload formula of firmware_export (lut.lut_payload_bytes, tflm_prune.payload_bytes) at the
layer's kept size, less compress.DECODE_OVERHEAD_BYTES; its arena cost is the decoded int8
tensor, which lives in the TFLM arena (counted in full against the RAM budget: conservative,
the planner may overlap it). The allocator takes whichever move, channel step or compression,
costs the least predicted accuracy per unit of the unmet budget, and never one that breaks a
limit that was met. The search then measures the real compressed artifact and tightens.

This module measures the moves and applies them to weights; it does not allocate or convert.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from firmware_export.compress import DECODE_OVERHEAD_BYTES
from firmware_export.lut import lut_payload_bytes
from firmware_export.tflm_prune import payload_bytes
from tinyprune import training
from tinyprune.budget.sensitivity import measured_on
from tinyprune.load.data import Dataset

PRUNE_LEVELS = (0.5, 0.75)  # sparsities offered per layer
LUT_BITS = 4  # the default LUT index width (16 values per output channel)
KMEANS_ITERATIONS = 12
COMPRESSIBLE = ("Conv2D", "Dense")


@dataclass(frozen=True)
class Move:
    """One compression choice for one layer's kernel."""

    layer: str
    method: str  # "prune" or "lut"
    level: float  # sparsity for prune, index bits for lut
    drop: float = 0.0  # measured validation score drop (no fine-tuning)

    @property
    def label(self) -> str:
        return f"{self.method}@{self.level:g}"

    def payload(self, elements: float, channels: float) -> float:
        if self.method == "prune":
            return payload_bytes(int(round(elements)), int(round(elements * (1 - self.level))))
        return lut_payload_bytes(int(round(elements)), max(1, int(round(channels))), int(self.level),
                                 2 ** int(self.level))

    def saving(self, elements: float, channels: float) -> float:
        """Flash saved at this kept size (negative: not worth it)."""
        return elements - self.payload(elements, channels) - DECODE_OVERHEAD_BYTES


@dataclass
class CompressionChoices:
    """The moves the allocator may take, and the compression part of a prediction."""

    moves: list[Move] = field(default_factory=list)
    weight_index: dict[str, int] = field(default_factory=dict)  # layer -> index in predictor._weights

    def adjust(self, predictor, frac: np.ndarray, chosen: dict[str, Move]) -> tuple[float, float]:
        """(flash saved, arena added) by the chosen moves at channel fractions `frac`."""
        saved = added = 0.0
        for layer, move in chosen.items():
            w = predictor._weights[self.weight_index[layer]]
            elements = w.kept_elements(frac)
            saved += max(0.0, move.saving(elements, w.kept_channels(frac)))
            added += elements
        return saved, added

    def reindex(self, predictor) -> None:
        """Point the moves at `predictor`'s weights (a predictor of a later iterative step)."""
        index = {w.layer: i for i, w in enumerate(predictor._weights) if w.name == "kernel"}
        self.weight_index = {k: index[k] for k in self.weight_index if k in index}
        self.moves = [m for m in self.moves if m.layer in self.weight_index]

    def to_dict(self) -> dict:
        return {"moves": [asdict(m) | {"label": m.label} for m in self.moves]}


def _kernel_index(layer) -> int | None:
    for i, w in enumerate(layer.weights):
        if w.name.split("/")[-1].split(":")[0] == "kernel":
            return i
    return None


def magnitude_mask(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """True where a weight is kept: all but the `sparsity` fraction of smallest |w|."""
    k = int(round(sparsity * kernel.size))
    if k <= 0:
        return np.ones(kernel.shape, bool)
    order = np.argsort(np.abs(kernel), axis=None, kind="stable")
    keep = np.ones(kernel.size, bool)
    keep[order[:k]] = False
    return keep.reshape(kernel.shape)


def cluster_channels(kernel: np.ndarray, bits: int) -> np.ndarray:
    """`kernel` with every output channel (last axis) replaced by its 2^bits 1-D k-means centres
    (zeros stay exactly zero, so that a pruned layer stays pruned)."""
    k = 2 ** bits
    flat = kernel.reshape(-1, kernel.shape[-1])
    out = flat.copy()
    for c in range(flat.shape[1]):
        v = flat[:, c]
        nz = v != 0
        vals = v[nz]
        if len(np.unique(vals)) <= k - 1:
            continue
        centres = np.quantile(vals, (np.arange(k - 1) + 0.5) / (k - 1))  # one value is kept for 0
        for _ in range(KMEANS_ITERATIONS):
            idx = np.abs(vals[:, None] - centres[None, :]).argmin(1)
            for j in range(len(centres)):
                if (idx == j).any():
                    centres[j] = vals[idx == j].mean()
        out[nz, c] = centres[np.abs(vals[:, None] - centres[None, :]).argmin(1)]
    return out.reshape(kernel.shape)


def apply_moves(model, chosen: dict[str, Move], masks: dict[str, np.ndarray] | None = None,
                cluster: bool = True):
    """Apply the chosen moves to `model`'s weights in place: prune layers get their mask (from
    `masks`, else by magnitude), LUT layers are clustered when `cluster`. Returns the masks."""
    masks = dict(masks or {})
    for name, move in chosen.items():
        layer = model.get_layer(name)
        i = _kernel_index(layer)
        weights = layer.get_weights()
        if move.method == "prune":
            if name not in masks:
                masks[name] = magnitude_mask(weights[i], move.level)
            weights[i] = weights[i] * masks[name]
        elif cluster:
            weights[i] = cluster_channels(weights[i], int(move.level))
        layer.set_weights(weights)
    return masks


def mask_callback(model, chosen: dict[str, Move], masks: dict[str, np.ndarray]):
    """A Keras callback that keeps the pruned weights at zero while fine-tuning."""
    from tinyprune.tfsetup import keras

    prune_only = {n: m for n, m in chosen.items() if m.method == "prune"}

    class KeepZeros(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            apply_moves(model, prune_only, masks, cluster=False)

    return KeepZeros()


def measure_moves(model, ds: Dataset, predictor, bits: int = LUT_BITS, levels=PRUNE_LEVELS,
                  ignore: tuple[str, ...] = ()) -> CompressionChoices:
    """Every compression move of every compressible kernel, with its measured drop."""
    from tinyprune.tfsetup import keras

    x, y = measured_on(ds)  # the samples sensitivity measures on, for the same reason
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    base = training.score(training.predict(twin, x), y)
    index = {w.layer: i for i, w in enumerate(predictor._weights) if w.name == "kernel"}
    out = CompressionChoices()
    for layer in model.layers:
        if type(layer).__name__ not in COMPRESSIBLE or layer.name not in index or layer.name in ignore:
            continue
        out.weight_index[layer.name] = index[layer.name]
        saved = twin.get_layer(layer.name).get_weights()
        for move in [Move(layer.name, "prune", s) for s in levels] + [Move(layer.name, "lut", bits)]:
            apply_moves(twin, {layer.name: move})
            drop = base - training.score(training.predict(twin, x), y)
            out.moves.append(Move(move.layer, move.method, move.level, round(float(drop), 6)))
            twin.get_layer(layer.name).set_weights(saved)
    return out
