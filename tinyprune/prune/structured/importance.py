"""Channel importance for structured pruning: one score per channel of every group.

A criterion first gives a *saliency* per weight (|w|, w², |w * dL/dw|, |gamma|, or any
per-weight score function), for the weights that carry channels in the dependency graph
(kernels, depthwise/pointwise kernels, BatchNorm gamma). Each layer's saliency is summed over
every weight that belongs to a channel (a producer's output slice, a consumer's input slice,
a depthwise filter), giving one vector per layer per group; the group's score per channel is
the reduction of those vectors over the group's layers: `sum`, `mean` or `max` (a layer that
does not touch a channel, e.g. one side of a Concatenate, is left out for that channel).
Higher score = more important = kept.

Criteria (the registry `IMPORTANCES`, extend it with `register_importance`):
- l1: sum |w|; l2: sum w² (Torch-Pruning's group magnitude with p=1 / p=2).
- bn: |gamma| of the group's BatchNormalization layers (network slimming, Liu et al. 2017);
  a group without BatchNorm falls back to l1.
- taylor: first-order Taylor, sum |w * dL/dw| on a batch of training data (Molchanov et al.
  2019); needs data with labels.
- random: uniform noise with a fixed seed (the baseline).
- scores-<name>: any per-weight score of `tinyprune.prune.at_init.scores` (magnitude, random, snip, grasp,
  synflow) summed over each channel's kernel weights; see `ScoreImportance` to wrap your own.

This module scores channels; it does not choose or remove them (pruner.py).
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from tinyprune.errors import ConfigError, DataError
from tinyprune.prune import check_reduction  # REDUCTIONS lives there, without TensorFlow
from tinyprune.prune.structured.dependency import DependencyGraph
MAGNITUDE_WEIGHTS = frozenset({"kernel", "depthwise_kernel", "pointwise_kernel", "gamma"})
KERNEL_WEIGHTS = ("kernel", "depthwise_kernel", "pointwise_kernel")
TAYLOR_SAMPLES = 256  # one batch of this many training samples estimates the gradient
RANDOM_SEED = 0

Saliency = dict[str, dict[str, np.ndarray]]  # layer -> weight name -> array shaped like the weight


def as_xy(data) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(x, y) from a `Dataset` (training split), an (x, y) tuple, an x array, or None."""
    if data is None:
        return None, None
    if hasattr(data, "x_train"):
        return data.x_train, data.y_train
    if isinstance(data, tuple):
        return data[0], data[1] if len(data) > 1 else None
    return np.asarray(data), None


def reduce_saliency(graph: DependencyGraph, saliency: Saliency, reduction: str = "mean") -> list[np.ndarray]:
    """One score per channel for every group of `graph` (list aligned with `graph.groups`)."""
    check_reduction(reduction)
    sums: list[dict[str, np.ndarray]] = [{} for _ in graph.groups]
    touched: list[dict[str, np.ndarray]] = [{} for _ in graph.groups]
    for sl in graph.slices:
        arr = saliency.get(sl.layer, {}).get(sl.weight_name)
        if arr is None:
            continue
        axis = sl.axis % arr.ndim
        per_pos = np.asarray(arr).sum(axis=tuple(a for a in range(arr.ndim) if a != axis)).astype(np.float64)
        gi, ch = graph.locate(sl.ids)
        for g in np.unique(gi[gi >= 0]):
            sel = gi == g
            n = graph.groups[g].channels
            s = sums[g].setdefault(sl.layer, np.zeros(n))
            t = touched[g].setdefault(sl.layer, np.zeros(n, dtype=bool))
            np.add.at(s, ch[sel], per_pos[sel])
            t[ch[sel]] = True
    out = []
    for gi, g in enumerate(graph.groups):
        if not sums[gi]:
            out.append(np.zeros(g.channels))
            continue
        mat = np.stack([np.where(touched[gi][k], v, np.nan) for k, v in sums[gi].items()])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: channels no weight touches
            red = {"sum": np.nansum, "mean": np.nanmean, "max": np.nanmax}[reduction](mat, axis=0)
        out.append(np.nan_to_num(red, nan=0.0))
    return out


def _layer_weights(graph: DependencyGraph, names: frozenset[str] | tuple[str, ...]) -> dict[str, dict[str, object]]:
    """layer -> weight name -> variable, for the weights the graph slices (named in `names`)."""
    out: dict[str, dict[str, object]] = {}
    for sl in graph.slices:
        if sl.weight_name in names:
            layer = graph.model.get_layer(sl.layer)
            out.setdefault(sl.layer, {})[sl.weight_name] = layer.weights[sl.weight_index]
    return out


def has_batchnorm(graph: DependencyGraph, group) -> bool:
    """True if one of the group's layers is a BatchNormalization."""
    return any(n.class_name == "BatchNormalization" and n.name in group.layers for n in graph.nodes)


class Importance:
    """Base class: override `saliency` (per-weight) or `group_scores` (per channel)."""

    name = "base"
    needs_data = False

    def saliency(self, graph: DependencyGraph, data=None) -> Saliency:
        raise NotImplementedError

    def group_scores(self, graph: DependencyGraph, data=None, reduction: str = "mean") -> list[np.ndarray]:
        """Scores per channel for each group of `graph` (higher = keep)."""
        if self.needs_data and as_xy(data)[0] is None:
            raise DataError(f"importance '{self.name}' needs training data; pass --data (or data=...)")
        return reduce_saliency(graph, self.saliency(graph, data), reduction)


class MagnitudeImportance(Importance):
    """Sum of |w|^p over every weight of a channel (p = 1: l1, p = 2: l2)."""

    def __init__(self, p: int = 1):
        self.p = p
        self.name = f"l{p}"

    def saliency(self, graph, data=None) -> Saliency:
        return {ly: {w: np.abs(v.numpy()) ** self.p for w, v in ws.items()}
                for ly, ws in _layer_weights(graph, MAGNITUDE_WEIGHTS).items()}


class BNScaleImportance(Importance):
    """|gamma| of the group's BatchNormalization layers; l1 for a group without one."""

    name = "bn"

    def saliency(self, graph, data=None) -> Saliency:
        return {ly: {"gamma": np.abs(ws["gamma"].numpy())} for ly, ws in _layer_weights(graph, ("gamma",)).items()
                if graph.model.get_layer(ly).__class__.__name__ == "BatchNormalization"}

    def group_scores(self, graph, data=None, reduction="mean") -> list[np.ndarray]:
        bn = reduce_saliency(graph, self.saliency(graph), reduction)
        l1 = MagnitudeImportance(1).group_scores(graph, None, reduction)
        return [b if has_batchnorm(graph, g) else m for b, m, g in zip(bn, l1, graph.groups)]


class TaylorImportance(Importance):
    """First-order Taylor: sum |w * dL/dw| over a channel's weights, on one batch of data."""

    name = "taylor"
    needs_data = True

    def __init__(self, samples: int = TAYLOR_SAMPLES):
        self.samples = samples

    def saliency(self, graph, data=None) -> Saliency:
        from tinyprune.tfsetup import keras, tf
        from tinyprune.training import ends_in_softmax

        x, y = as_xy(data)
        if y is None:
            raise DataError("importance 'taylor' needs labels (or targets) with the data")
        x, y = x[: self.samples], y[: self.samples]
        model = graph.model
        weights = _layer_weights(graph, MAGNITUDE_WEIGHTS)
        flat = [(ly, w, v) for ly, ws in weights.items() for w, v in ws.items()]
        with tf.GradientTape() as tape:
            pred = model(tf.convert_to_tensor(x, tf.float32), training=False)
            if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
                loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_in_softmax(model))(y, pred)
            else:
                loss = keras.losses.MeanSquaredError()(tf.reshape(tf.cast(y, tf.float32), tf.shape(pred)), pred)
        grads = tape.gradient(loss, [v for _, _, v in flat])
        out: Saliency = {}
        for (ly, w, v), g in zip(flat, grads):
            if g is not None:
                out.setdefault(ly, {})[w] = np.abs(v.numpy() * g.numpy())
        return out


class RandomImportance(Importance):
    """Uniform random scores per channel (the baseline), reproducible with `seed`."""

    name = "random"

    def __init__(self, seed: int = RANDOM_SEED):
        self.seed = seed

    def group_scores(self, graph, data=None, reduction="mean") -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        return [rng.random(g.channels) for g in graph.groups]


class ScoreImportance(Importance):
    """Adapter: a per-weight score function `score_fn(model, x=None, y=None) -> {layer: array}`
    (arrays shaped like the layer's kernel, higher = keep, as in `tinyprune.prune.at_init.scores`) reduced
    over each channel's kernel weights. Layers the function does not score add nothing."""

    def __init__(self, score_fn: Callable, name: str = "scores", needs_data: bool = False):
        self.score_fn, self.name, self.needs_data = score_fn, name, needs_data

    def saliency(self, graph, data=None) -> Saliency:
        x, y = as_xy(data)
        scores = self.score_fn(graph.model, x, y)
        out: Saliency = {}
        for ly, ws in _layer_weights(graph, KERNEL_WEIGHTS).items():
            arr = scores.get(ly)
            if arr is None:
                continue
            for w, v in ws.items():  # the score array is shaped like one of the layer's kernels
                if tuple(v.shape) == tuple(np.shape(arr)):
                    out.setdefault(ly, {})[w] = np.asarray(arr, dtype=np.float64)
                    break
        return out


IMPORTANCES: dict[str, Callable[[], Importance]] = {
    "l1": lambda: MagnitudeImportance(1),
    "l2": lambda: MagnitudeImportance(2),
    "bn": BNScaleImportance,
    "taylor": TaylorImportance,
    "random": RandomImportance,
}


def register_importance(name: str, factory: Callable[[], Importance]) -> None:
    """Add (or replace) a criterion under `name`."""
    IMPORTANCES[name] = factory


def _register_scores() -> None:
    """Expose every per-weight score of tinyprune.prune.at_init.scores as `scores-<name>`."""
    try:
        from tinyprune.prune.at_init import scores
    except ImportError:  # the scores module is optional
        return
    for sname, fn in scores.SCORES.items():
        register_importance(f"scores-{sname}", lambda fn=fn, sname=sname: ScoreImportance(
            fn, f"scores-{sname}", needs_data=sname in scores.NEEDS_DATA))


def get_importance(spec: str | Importance) -> Importance:
    """An `Importance` from a registered name (or the object itself)."""
    if isinstance(spec, Importance):
        return spec
    if spec not in IMPORTANCES and spec.startswith("scores-"):
        _register_scores()
    if spec not in IMPORTANCES:
        raise ConfigError(f"unknown importance {spec!r}; use one of {', '.join(sorted(IMPORTANCES))} "
                          "or scores-<name> (magnitude, random, snip, grasp, synflow)")
    return IMPORTANCES[spec]()
