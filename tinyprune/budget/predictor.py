"""Predict a pruned model's int8 .tflite size, arena and MACs from per-group channel counts.

The budget search tries hundreds of allocations; converting each to TFLite would take
seconds apiece. Instead, one real conversion of the unpruned model anchors a linear model of
what pruning removes:

    bytes(k) = bytes_measured(full) - W(full) + W(k)

where W counts, for every layer that becomes a TFLite kernel op (Conv, Dense, Depthwise,
Separable), its int8 weights plus, per output channel, an int32 bias and the per-channel
quantization parameters TFLite stores for weights and bias (a float32 scale and an int64
zero point each: 4 + 2 * (4 + 8) = 28 bytes). BatchNormalization folds into the convolution
and costs nothing. Everything else in the file (op list, tensor metadata, activations'
quantization) is taken from the measured model as is.

Kept counts along a weight's channel axis come from the dependency graph: a position
belonging to group g keeps the fraction of g's free channels that survive.

The arena is predicted the same way, from the measured one: its fixed part (persistent
allocations, alignment slack) is kept, and its activation part (the planner's head and the
CMSIS-NN scratch in it) scales with the largest sum of two consecutive layers' output sizes in
model order (a cheap stand-in for the planner's peak that ignores skip connections). The budget
search predicts the 32-bit bound this way and maps it to the exported header's constant
(`to_arena`: + 5% + 512 B), so the fixed 512 B is not scaled. On the digits CNN kept at
75%-12.5% of its channels it over-estimated the measured arena by 3-12% (docs/benchmarks.md,
"Arena predictor"); the budget search always measures the real artifact after, and tightens
if it missed.
This module predicts; it does not prune, convert or search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from tinyprune.prune.structured.dependency import DependencyGraph

# TFLite per-output-channel bytes: int32 bias + (float32 scale + int64 zero point) for the
# weight tensor and again for the bias tensor (schema.fbs QuantizationParameters).
PER_CHANNEL_BYTES = 4 + 2 * (4 + 8)
_KERNEL_WEIGHTS = ("kernel", "depthwise_kernel", "pointwise_kernel")
_KERNEL_LAYERS = ("Conv1D", "Conv2D", "Dense", "DepthwiseConv1D", "DepthwiseConv2D",
                  "SeparableConv1D", "SeparableConv2D")


@dataclass
class _AxisCount:
    """Positions along one weight axis: how many always stay, how many belong to each group."""

    axis: int
    always: int
    free: dict[int, int]  # group index -> free positions of that group

    def kept(self, frac: np.ndarray) -> float:
        return self.always + sum(n * frac[g] for g, n in self.free.items())


@dataclass
class _Weight:
    layer: str
    name: str
    shape: tuple[int, ...]
    axes: list[_AxisCount]
    per_channel: str  # "last": output channels on the last axis; "depthwise": elems / spatial; "" none

    def kept_elements(self, frac: np.ndarray) -> float:
        n = float(np.prod(self.shape))
        for ax in self.axes:
            n *= ax.kept(frac) / self.shape[ax.axis]
        return n

    def kept_channels(self, frac: np.ndarray) -> float:
        if self.per_channel == "last":
            for ax in self.axes:
                if ax.axis == len(self.shape) - 1:
                    return ax.kept(frac)
            return float(self.shape[-1])
        if self.per_channel == "depthwise":
            return self.kept_elements(frac) / float(np.prod(self.shape[:-2]))
        return 0.0


def _axis_count(graph: DependencyGraph, ids: np.ndarray, axis: int) -> _AxisCount:
    gi, ch = graph.locate(ids)
    always, free = 0, {}
    for g, c in zip(gi, ch):
        if g < 0 or graph.groups[g].fixed[c]:
            always += 1
        else:
            free[int(g)] = free.get(int(g), 0) + 1
    return _AxisCount(axis, always, free)


@dataclass
class Prediction:
    flash_bytes: int  # the int8 .tflite bytes
    arena_bytes: int
    macs: int


class SizePredictor:
    """Predicts int8 bytes, 32-bit arena and MACs for per-group keep counts (see module doc).

    Args:
        model: the unpruned tf_keras model the graph was built from.
        graph: its dependency graph.
        flash_bytes: the measured size of the unpruned model's int8 .tflite.
        arena_bytes: the measured 32-bit TFLM arena of that .tflite (the budget search: its bound).
        arena_head_bytes: the part of that arena that scales with the activations.
        to_arena: maps a predicted figure of that kind to the arena predicted (the budget search:
            the header's constant of a bound, `arena_bound.arena_constant`); default as it is.
    """

    def __init__(self, model, graph: DependencyGraph, flash_bytes: int, arena_bytes: int, arena_head_bytes: int,
                 to_arena: Callable[[int], int] | None = None):
        self.graph = graph
        self.base_bytes, self.base_arena, self.base_head = flash_bytes, arena_bytes, arena_head_bytes
        self._to_arena = to_arena or (lambda n: n)
        self._weights = self._kernel_weights(model, graph)
        self._acts = self._activations(model, graph)
        full = self.full_fractions()
        self._w_full = self._weight_bytes(full)
        self._peak_full = self._peak(full)
        self._macs_full = self._macs(full)

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _kernel_weights(model, graph: DependencyGraph) -> list[_Weight]:
        by_weight: dict[tuple[str, str], list[_AxisCount]] = {}
        for sl in graph.slices:
            if sl.weight_name.split(":")[0].split("/")[-1] in (*_KERNEL_WEIGHTS, "alpha"):
                layer = model.get_layer(sl.layer)
                rank = len(layer.get_weights()[sl.weight_index].shape)
                by_weight.setdefault((sl.layer, sl.weight_name), []).append(
                    _axis_count(graph, sl.ids, sl.axis % rank))
        out = []
        for layer in model.layers:
            cls = type(layer).__name__
            for w in layer.weights:
                short = w.name.split("/")[-1].split(":")[0]
                if short == "alpha" and cls == "PReLU":
                    per = ""
                elif cls in _KERNEL_LAYERS and short in _KERNEL_WEIGHTS:
                    per = "depthwise" if short == "depthwise_kernel" else "last"
                else:
                    continue
                axes = next((v for (ln, wn), v in by_weight.items()
                             if ln == layer.name and wn.split(":")[0].split("/")[-1] == short), [])
                out.append(_Weight(layer.name, short, tuple(int(d) for d in w.shape), axes, per))
        return out

    @staticmethod
    def _activations(model, graph: DependencyGraph) -> list[tuple[str, int, _AxisCount | None]]:
        """Per layer call in model order: (name, spatial size of its output, its channel counts)."""
        rows = []
        for node in graph.nodes:
            base = node.name.split("#")[0]
            try:
                shape = model.get_layer(base).output_shape
            except (ValueError, AttributeError):
                continue
            if isinstance(shape, list) or shape is None:
                continue
            spatial = int(np.prod([d for d in shape[1:-1] if d])) if len(shape) > 2 else 1
            count = _axis_count(graph, node.out_ids, 0) if node.out_ids is not None and len(node.out_ids) else None
            rows.append((node.name, spatial, count))
        return rows

    # ------------------------------------------------------------------ model
    def full_fractions(self) -> np.ndarray:
        return np.ones(len(self.graph.groups))

    def fractions(self, keep: dict[str, int]) -> np.ndarray:
        """Fraction of each group's free channels kept, for keep counts by group id."""
        frac = self.full_fractions()
        for gi, g in enumerate(self.graph.groups):
            if g.id in keep:
                free = g.channels - g.fixed_channels
                frac[gi] = 1.0 if free <= 0 else min(1.0, max(0.0, (keep[g.id] - g.fixed_channels) / free))
        return frac

    def _weight_bytes(self, frac: np.ndarray) -> float:
        return sum(w.kept_elements(frac) + PER_CHANNEL_BYTES * w.kept_channels(frac) for w in self._weights)

    def _peak(self, frac: np.ndarray) -> float:
        sizes = [spatial * (count.kept(frac) if count else 1) for _, spatial, count in self._acts]
        # two consecutive activations in model order are live together
        return max((a + b for a, b in zip(sizes, sizes[1:])), default=sizes[0] if sizes else 0)

    def _macs(self, frac: np.ndarray) -> float:
        spatial = {name.split("#")[0]: s for name, s, _ in self._acts}
        total = 0.0
        for w in self._weights:
            if w.name in _KERNEL_WEIGHTS:
                per_position = w.kept_elements(frac)
                total += per_position * spatial.get(w.layer, 1)
        return total

    def predict(self, keep: dict[str, int]) -> Prediction:
        frac = self.fractions(keep)
        nbytes = self.base_bytes - self._w_full + self._weight_bytes(frac)
        tail = self.base_arena - self.base_head
        head = self.base_head * (self._peak(frac) / self._peak_full if self._peak_full else 1.0)
        macs = self._macs(frac)
        return Prediction(int(round(nbytes)), int(self._to_arena(int(round(tail + head)))), int(round(macs)))

    def macs_ratio(self, keep: dict[str, int]) -> float:
        return self.predict(keep).macs / self._macs_full if self._macs_full else 1.0
