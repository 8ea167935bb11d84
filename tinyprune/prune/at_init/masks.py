"""Binary weight masks for unstructured pruning: build them globally, hold them, check them.

A mask set is `dict[str, np.ndarray]`: prunable layer name (see `scores.prunable_layers`) ->
boolean array shaped like that layer's kernel, True = the weight survives.

- `global_masks` ranks the scores of all prunable layers together and keeps exactly
  round(N / rho) weights (compression rho, kept fraction 1/rho), never reviving a weight an
  earlier mask removed.
- `apply_masks` zeros the pruned weights in place: the zeros are then part of the model's
  weights, so a saved model holds them permanently (no wrappers to strip).
- `MaskCallback` re-applies the masks after every optimizer step, so training never revives
  a pruned weight (an optimizer with momentum would otherwise move it off zero).
- `train_masked` compiles and trains a pruned model with that callback (fresh optimizer).
- `check_collapse` is the layer-collapse guard: a prunable layer with no surviving weight
  stops pruning with `LayerCollapseError`, naming the layer and the compression reached.

This module does not score weights (scores.py) or decide schedules (init_pruning.py, lottery.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyprune import training
from tinyprune.load.data import Dataset
from tinyprune.errors import ConfigError, LayerCollapseError
from tinyprune.prune.at_init.scores import prunable_layers
from tinyprune.tfsetup import keras

Masks = dict[str, np.ndarray]


def validate_compression(compression: float) -> None:
    """Compression rho must be a finite number >= 1 (kept fraction 1/rho)."""
    if compression is None or not np.isfinite(compression) or compression < 1.0:
        raise ConfigError(f"compression must be a number >= 1 (kept fraction = 1/compression), got {compression}")


def full_masks(model) -> Masks:
    """All-True masks: nothing pruned yet."""
    return {name: np.ones(tuple(k.shape), dtype=bool) for name, k in prunable_layers(model).items()}


def masks_from_zeros(model) -> Masks:
    """Masks that keep every weight that is not exactly zero (reads a pruned model back)."""
    return {name: k.numpy() != 0 for name, k in prunable_layers(model).items()}


def global_masks(scores: dict[str, np.ndarray], compression: float, previous: Masks | None = None) -> Masks:
    """Keep the round(N / compression) highest-scoring weights across all layers.

    Weights already pruned in `previous` rank below every survivor, so they stay pruned.
    Ties are broken by position (stable sort), so exactly that many weights survive.
    """
    validate_compression(compression)
    names = list(scores)
    flat = [np.asarray(scores[n], dtype=np.float64).ravel().copy() for n in names]
    if previous is not None:
        for i, n in enumerate(names):
            flat[i][~previous[n].ravel()] = -np.inf
    allv = np.concatenate(flat) if flat else np.zeros(0)
    allv = np.nan_to_num(allv, nan=-np.inf)
    total = allv.size
    keep = int(round(total / compression))
    if previous is not None:
        keep = min(keep, int(sum(previous[n].sum() for n in names)))
    order = np.argsort(-allv, kind="stable")
    kept = np.zeros(total, dtype=bool)
    kept[order[:keep]] = True
    out, start = {}, 0
    for n, f in zip(names, flat):
        out[n] = kept[start:start + f.size].reshape(np.shape(scores[n]))
        start += f.size
    return out


def apply_masks(model, masks: Masks) -> None:
    """Zero every pruned weight of `model` in place (the zeros become part of its weights)."""
    kernels = prunable_layers(model)
    for name, mask in masks.items():
        k = kernels[name]
        k.assign(k.numpy() * mask.astype(k.dtype.as_numpy_dtype))


class MaskCallback(keras.callbacks.Callback):
    """Re-apply masks after every training batch, so a pruned weight never comes back."""

    def __init__(self, masks: Masks):
        super().__init__()
        self.masks = masks
        self._pairs = None

    def on_train_begin(self, logs=None):
        kernels = prunable_layers(self.model)
        self._pairs = [(kernels[n], m.astype(kernels[n].dtype.as_numpy_dtype)) for n, m in self.masks.items()]
        self._apply()

    def on_train_batch_end(self, batch, logs=None):
        self._apply()

    def _apply(self):
        for var, mask in self._pairs:
            var.assign(var * mask)


def train_masked(model, ds: Dataset, masks: Masks, epochs: int, batch_size: int = 32,
                 description: str = "training the pruned network", quiet: bool = False,
                 callbacks: tuple = ()) -> float:
    """Compile (fresh Adam), train with the masks held, return the validation score."""
    training.compile_for(model, ds)
    training.train(model, ds, epochs, batch_size, callbacks=[MaskCallback(masks), *callbacks],
                   description=description, quiet=quiet)
    apply_masks(model, masks)
    return training.evaluate(model, ds)


@dataclass
class LayerKept:
    """How much of one prunable layer survives."""

    layer: str
    weights: int
    kept: int

    @property
    def fraction(self) -> float:
        return self.kept / self.weights if self.weights else 0.0


def kept_per_layer(masks: Masks) -> list[LayerKept]:
    """Per-layer surviving weights, in model order."""
    return [LayerKept(n, int(m.size), int(m.sum())) for n, m in masks.items()]


def kept_fraction(masks: Masks) -> float:
    """Overall fraction of prunable weights that survive."""
    total = sum(m.size for m in masks.values())
    return float(sum(m.sum() for m in masks.values()) / total) if total else 1.0


def collapsed_layers(masks: Masks) -> list[str]:
    """Prunable layers with no surviving weight."""
    return [n for n, m in masks.items() if m.size and not m.any()]


def check_collapse(masks: Masks, compression: float, allow_collapse: bool = False) -> list[str]:
    """Raise LayerCollapseError if a layer lost every weight (unless allowed); return them."""
    gone = collapsed_layers(masks)
    if gone and not allow_collapse:
        which = f"layer '{gone[0]}'" if len(gone) == 1 else "layers " + ", ".join(f"'{n}'" for n in gone)
        raise LayerCollapseError(
            f"{which} lost every weight at compression {compression:.4g} "
            f"(kept {100.0 / compression:.3g}% overall); lower --compression, use an iterative method "
            "such as synflow, or pass --allow-collapse"
        )
    return gone
