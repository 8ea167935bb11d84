"""Per-weight saliency scores for a tf_keras model: magnitude, random, SNIP, GraSP, SynFlow.

The shared interface (also used by the structured pruner to rank whole filters):

    score_fn(model, x=None, y=None) -> dict[str, np.ndarray]

maps the name of every prunable layer to an array shaped exactly like that layer's kernel.
HIGHER SCORE = MORE IMPORTANT (keep it). Prunable layers are those with one main kernel:
Conv1D/Conv2D/Conv3D/Conv*Transpose and Dense (`layer.kernel`, output channels on the last
axis) and DepthwiseConv2D (`layer.depthwise_kernel`, shape (kh, kw, in, multiplier); output
channel c = i * multiplier + m). Biases, BatchNorm and all other variables are never scored
(nor pruned). SeparableConv layers (two kernels) are not scored. Layers of nested models are
included under their own names. Scores are float64 numpy arrays.

`SCORES` is the registry {name: score_fn}; `NEEDS_DATA` names the methods that need a batch
`x` (and labels `y`). A method that needs data raises `DataError` when `x` is absent.

Formulations (checked against the papers and the Synaptic-Flow reference implementation):
- magnitude: |w|.
- random: i.i.d. uniform noise (the baseline); `seed` keyword.
- SNIP (Lee et al., ICLR 2019): |dL/dw * w| on one batch (connection sensitivity; the
  normalisation by the sum does not change the ranking and is omitted).
- GraSP (Wang et al., ICLR 2020): the paper scores S = -(H g) * w and removes the weights
  with the HIGHEST S. To keep "higher = keep", this module returns (H g) * w = -S. H g is the
  Hessian-gradient product by double backprop: g is the loss gradient (held constant),
  H g = d(g_const . dL/dw)/dw. Logits are divided by a temperature T = 200 as in GraSP.
- SynFlow (Tanaka et al., NeurIPS 2020): every weight of the model replaced by its absolute
  value, an all-ones input (batch of 1), R = sum of the network's outputs (before any final
  softmax), score |dR/dw * w|. Data-free: `x` and `y` are ignored. BatchNorm runs in eval
  (inference) mode with |gamma|, |beta|, |moving mean|, moving variance, as the reference
  implementation does (it takes abs of the whole state dict and calls model.eval()).
  Computed in float64: R is a product over layers and overflows/underflows float32 in deep
  nets (the paper's precision note). The model's own weights are never modified.

All data-dependent scores run the model in inference mode (training=False: BatchNorm uses
its moving statistics, Dropout is off), as the Synaptic-Flow prune loop does (model.eval()).
This module scores; it does not build masks (masks.py) or prune (init_pruning.py, lottery.py).
"""

from __future__ import annotations

import weakref
from typing import Callable, Iterator, Protocol

import numpy as np

from tinyprune.errors import DataError, UnsupportedLayerError
from tinyprune.keras_facts import ends_in_softmax
from tinyprune.prune.methods import SCORES_NEEDING_DATA
from tinyprune.tfsetup import keras, tf

GRASP_TEMPERATURE = 200.0  # Wang et al. 2020, reference code (alecwangcq/GraSP, T=200)
RANDOM_SEED = 0


class ScoreFn(Protocol):
    def __call__(self, model, x: np.ndarray | None = None, y: np.ndarray | None = None) -> dict[str, np.ndarray]: ...


# ---------------------------------------------------------------------------------- layers

def iter_layers(model) -> Iterator:
    """Every layer of `model`, descending into nested models (depth first, in order)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer)
        else:
            yield layer


def prunable_kernel(layer):
    """The layer's prunable kernel variable, or None (biases, BN and others are not pruned)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return layer.depthwise_kernel
    if isinstance(layer, keras.layers.SeparableConv1D | keras.layers.SeparableConv2D):
        return None
    if isinstance(layer, keras.layers.Dense) or (
            isinstance(layer, keras.layers.Conv1D | keras.layers.Conv2D | keras.layers.Conv3D)):
        return layer.kernel  # Conv*Transpose subclass Conv*
    return None


def prunable_layers(model) -> dict[str, object]:
    """{layer name: kernel variable} for every prunable layer, in model order."""
    out = {}
    for layer in iter_layers(model):
        kernel = prunable_kernel(layer)
        if kernel is not None:
            out[layer.name] = kernel
    return out


def _kernel_list(model) -> tuple[list[str], list]:
    kernels = prunable_layers(model)
    return list(kernels), list(kernels.values())


# ---------------------------------------------------------------------------------- helpers

def _logits(model, x):
    """The model's output before a final softmax (log-probabilities stand in if it has one)."""
    out = model(x, training=False)
    if ends_in_softmax(model):
        return tf.math.log(tf.clip_by_value(out, 1e-12, 1.0))
    return out


def _loss(model, x, y, temperature: float = 1.0):
    """Cross-entropy from logits for integer labels (MSE for float targets), as training does."""
    logits = _logits(model, x)
    if y is not None and np.issubdtype(np.asarray(y).dtype, np.integer):
        return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            tf.convert_to_tensor(y), logits / temperature, from_logits=True))
    return tf.reduce_mean(tf.square(tf.reshape(logits, tf.shape(y)) - tf.cast(y, logits.dtype)))


def _require_data(name: str, x, y) -> None:
    if x is None or y is None:
        raise DataError(f"the {name} score needs a batch of training data and labels; give --data")


def _as_numpy(names: list[str], tensors) -> dict[str, np.ndarray]:
    return {n: np.asarray(t.numpy() if hasattr(t, "numpy") else t, dtype=np.float64) for n, t in zip(names, tensors)}


# ---------------------------------------------------------------------------------- scores

def magnitude_scores(model, x=None, y=None) -> dict[str, np.ndarray]:
    """|w| for every prunable kernel. Data-free."""
    names, kernels = _kernel_list(model)
    return {n: np.abs(k.numpy().astype(np.float64)) for n, k in zip(names, kernels)}


def random_scores(model, x=None, y=None, seed: int = RANDOM_SEED) -> dict[str, np.ndarray]:
    """Uniform random scores (the baseline). Data-free; deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    names, kernels = _kernel_list(model)
    return {n: rng.random(tuple(k.shape)) for n, k in zip(names, kernels)}


def snip_scores(model, x=None, y=None) -> dict[str, np.ndarray]:
    """SNIP connection sensitivity |dL/dw * w| on the batch (x, y)."""
    _require_data("SNIP", x, y)
    names, kernels = _kernel_list(model)
    with tf.GradientTape() as tape:
        loss = _loss(model, tf.convert_to_tensor(x), y)
    grads = tape.gradient(loss, kernels)
    return _as_numpy(names, [tf.abs(g * k) if g is not None else tf.zeros_like(k) for g, k in zip(grads, kernels)])


def grasp_scores(model, x=None, y=None, temperature: float = GRASP_TEMPERATURE) -> dict[str, np.ndarray]:
    """GraSP, returned as (H g) * w (= minus the paper's S, so that higher = keep)."""
    _require_data("GraSP", x, y)
    names, kernels = _kernel_list(model)
    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape1:
        loss = _loss(model, xt, y, temperature)
    g_const = [tf.stop_gradient(g) if g is not None else tf.zeros_like(k)
               for g, k in zip(tape1.gradient(loss, kernels), kernels)]
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            loss = _loss(model, xt, y, temperature)
        grads = inner.gradient(loss, kernels)
        z = tf.add_n([tf.reduce_sum(gc * g) for gc, g in zip(g_const, grads) if g is not None])
    hg = outer.gradient(z, kernels)
    return _as_numpy(names, [h * k if h is not None else tf.zeros_like(k) for h, k in zip(hg, kernels)])


# SynFlow runs on a float64 twin of the model, built once per model and reused across rounds.
_TWINS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _to_float64(config):
    """A copy of a Keras config with every float32 dtype (string or Policy) set to float64."""
    if isinstance(config, dict):
        out = {}
        for k, v in config.items():
            if k == "dtype" and v == "float32":
                out[k] = "float64"
            elif k == "dtype" and isinstance(v, dict) and v.get("config", {}).get("name") in ("float32", "mixed_float16"):
                out[k] = {**v, "config": {**v["config"], "name": "float64"}}
            else:
                out[k] = _to_float64(v)
        return out
    if isinstance(config, list):
        return [_to_float64(v) for v in config]
    return config


def _float64_twin(model):
    """The same architecture in float64, without a final softmax (R is taken on the logits)."""
    twin = _TWINS.get(model)
    if twin is not None:
        return twin
    config = _to_float64(model.get_config())
    twin = model.__class__.from_config(config)
    last = twin.layers[-1]
    if isinstance(last, keras.layers.Softmax | keras.layers.Activation) and ends_in_softmax(twin):
        twin = keras.Model(twin.inputs, last.input)
    elif ends_in_softmax(twin):
        last.activation = keras.activations.linear
    _TWINS[model] = twin
    return twin


def synflow_scores(model, x=None, y=None) -> dict[str, np.ndarray]:
    """SynFlow |dR/dw * w| with |weights|, all-ones input, BN in eval mode, float64. Ignores x, y."""
    shape = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if shape is None or None in shape:
        raise UnsupportedLayerError(
            f"SynFlow needs one input of fixed shape to build its all-ones input; this model's input shape "
            f"is {model.input_shape}: rebuild it with a fixed input shape")
    twin = _float64_twin(model)
    for v_twin, v in zip(twin.weights, model.weights):  # same architecture: weights line up in order
        v_twin.assign(np.abs(v.numpy().astype(np.float64)))
    names, _ = _kernel_list(model)
    twin_kernels = list(prunable_layers(twin).values())
    ones = tf.ones((1, *[int(d) for d in shape]), dtype=tf.float64)
    with tf.GradientTape() as tape:
        r = tf.reduce_sum(twin(ones, training=False))
    grads = tape.gradient(r, twin_kernels)
    return _as_numpy(names, [tf.abs(g * k) if g is not None else tf.zeros_like(k) for g, k in zip(grads, twin_kernels)])


SCORES: dict[str, Callable[..., dict[str, np.ndarray]]] = {
    "magnitude": magnitude_scores,
    "random": random_scores,
    "snip": snip_scores,
    "grasp": grasp_scores,
    "synflow": synflow_scores,
}
NEEDS_DATA: frozenset[str] = SCORES_NEEDING_DATA  # one list, in tinyprune.prune.methods


def needs_data(name: str) -> bool:
    """True if the score `name` needs a batch of training data (x, y)."""
    return name in NEEDS_DATA


def compute_scores(name: str, model, x: np.ndarray | None = None, y: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Look up `name` in SCORES and score `model`. Raises KeyError for an unknown name."""
    return SCORES[name](model, x, y)
