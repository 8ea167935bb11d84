"""Sparsity-preserving weight clustering with tfmot: at most 2^k distinct values per output channel.

This is the step that lets a pruned model's sparsity (and more) turn into flash that TFLM can
decode: once every output channel of a kernel holds at most 2^k values, its int8 weights can be
stored as k-bit indices into a per-channel table (`firmware_export.lut`). int8 per-channel
quantization maps each float value to one int8 value, and BatchNorm folding scales a whole output
channel by one factor, so neither can raise the count per channel.

How: tfmot's `cluster_weights` with `preserve_sparsity=True` (zeros stay zero: the centroid
nearest zero is pinned to 0 and the original zero mask is re-applied) and
`cluster_per_channel=True` for Conv2D with a bias (one set of 2^k centroids per output channel;
tfmot 0.8.1 counts channels from the bias, so a bias-free Conv2D, e.g. one followed by
BatchNorm, is clustered per tensor; so is a Conv2D with an all-zero output channel, on which
tfmot's per-channel sparsity-preserving initialization fails). tfmot clusters Dense kernels per tensor; a per-tensor bound
of 2^k values also bounds every channel. Kernel layers that are not clustered are frozen during
the fine-tune so their values and zeros stay as they are. A short fine-tune
adapts the centroids; `strip_clustering` leaves a plain tf_keras model.

What it does not do: cluster DepthwiseConv2D (tfmot has no clusterable weights for it), cluster
biases, or compress anything (see `firmware_export.lut`). Layers whose channels already hold at
most 2^k weights need no clustering and are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from firmware_export.lut import MAX_BITS, MIN_BITS, check_bits  # noqa: F401  (the LUT's index range, one place)
from tinyprune.keras_facts import main_kernel
from tinyprune.load.data import Dataset

# Fine-tuning rate for clustering: 10x below Adam's default; tfmot's clustering guide fine-tunes
# centroids with a lower rate than training so the clusters do not scatter.
CLUSTER_LR = 1e-4
# Linear centroid initialization: Han et al. 2016 (Deep Compression, sec. 3.1) found it keeps the
# large weights best; tfmot's k-means++ also fails on channels with fewer weights than clusters
# (measured here on the digits CNN at 80% sparsity).
CENTROID_INIT_NAME = "LINEAR"


@dataclass
class ClusterResult:
    """A stripped, clustered model and what was measured on it."""

    model: Any
    bits: int
    clustered: dict[str, str] = field(default_factory=dict)  # layer -> "per-channel" | "per-tensor"
    skipped: dict[str, str] = field(default_factory=dict)  # layer -> why not clustered
    values_per_channel: dict[str, int] = field(default_factory=dict)  # most distinct values in any channel
    sparsity: dict[str, float] = field(default_factory=dict)
    accuracy: float = float("nan")

    @property
    def fits(self) -> bool:
        """True if every kernel layer holds at most 2^bits values per output channel."""
        return all(v <= 2 ** self.bits for v in self.values_per_channel.values())


def values_per_output_channel(kernel: np.ndarray) -> int:
    """Most distinct values in any output channel of a Keras kernel ([..., out])."""
    flat = kernel.reshape(-1, kernel.shape[-1])
    return max(len(np.unique(flat[:, c])) for c in range(flat.shape[1]))


def _clusterable_kernel(layer):
    """The kernel tfmot can cluster: a layer's main kernel, but not a depthwise one."""
    return None if hasattr(layer, "depthwise_kernel") else main_kernel(layer)


def _no_empty_channel(kernel: np.ndarray) -> bool:
    """tfmot 0.8.1's per-channel sparsity-preserving init fails on an output channel of only zeros."""
    return bool(np.all(np.any(kernel.reshape(-1, kernel.shape[-1]) != 0, axis=0)))


def plan_clustering(model, bits: int) -> tuple[dict[str, str], dict[str, str]]:
    """Which layers get clustered (and how), and which are skipped (and why)."""
    from tinyprune.tfsetup import keras

    clusters = 2 ** bits
    chosen, skipped = {}, {}
    for layer in model.layers:
        if hasattr(layer, "depthwise_kernel"):
            skipped[layer.name] = f"{type(layer).__name__}: tfmot cannot cluster it"
            continue
        k = _clusterable_kernel(layer)
        if k is None:
            continue
        w = k.numpy()
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense, keras.layers.Conv1D)):
            skipped[layer.name] = f"{type(layer).__name__}: not clustered by tinyprune"
        elif values_per_output_channel(w) <= clusters:
            skipped[layer.name] = f"already at most {clusters} values per channel"
        elif isinstance(layer, keras.layers.Conv2D) and layer.use_bias and _no_empty_channel(w):
            chosen[layer.name] = "per-channel"
        elif w.size > clusters:
            chosen[layer.name] = "per-tensor"
    return chosen, skipped


def cluster_model(model, ds: Dataset, bits: int = 4, epochs: int = 1, batch_size: int = 32,
                  quiet: bool = False) -> ClusterResult:
    """Cluster `model` (a stripped, possibly sparse tf_keras model) to at most 2^bits values per channel.

    The model is not modified; a copy is clustered, fine-tuned for `epochs` on ds.x_train and
    stripped. Zeros stay zero. Returns measured values per channel, sparsity and accuracy.
    """
    from tinyprune import training
    from tinyprune.prune.magnitude import layer_sparsity
    from tinyprune.tfsetup import keras, tfmot

    check_bits(bits)
    chosen, skipped = plan_clustering(model, bits)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    cl = tfmot.clustering.keras
    CENTROID_INIT = getattr(cl.CentroidInitialization, CENTROID_INIT_NAME)

    def wrap(layer):
        how = chosen.get(layer.name)
        if how is None:
            if _clusterable_kernel(layer) is not None:
                layer.trainable = False  # not clustered: keep its values (and zeros) while the rest fine-tune
            return layer
        return cl.cluster_weights(layer, number_of_clusters=2 ** bits,
                                  cluster_centroids_init=CENTROID_INIT,
                                  preserve_sparsity=True, cluster_per_channel=how == "per-channel")

    if chosen:
        wrapped = keras.models.clone_model(copy, clone_function=wrap)
        training.compile_for(wrapped, ds, lr=CLUSTER_LR)
        training.train(wrapped, ds, epochs, batch_size, description=f"clustering to {2 ** bits} values/channel",
                       quiet=quiet)
        stripped = cl.strip_clustering(wrapped)
    else:
        stripped = copy
    values = {layer.name: values_per_output_channel(_clusterable_kernel(layer).numpy())
              for layer in stripped.layers if _clusterable_kernel(layer) is not None}
    return ClusterResult(stripped, bits, chosen, skipped, values, layer_sparsity(stripped),
                         training.evaluate(stripped, ds))
