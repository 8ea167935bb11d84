"""Facts about a tf_keras model that several stages read, each defined once.

- `main_kernel(layer)`: the weight a layer is pruned or clustered by (a depthwise kernel for
  DepthwiseConv2D, `kernel` for Conv/Dense), seen through tfmot's wrappers; None otherwise.
- `ends_in_softmax(model)`: whether the output is already a probability distribution (a
  Softmax layer or a softmax activation, also under tfmot pruning/clustering/QAT wrappers).

Which kernels a method may touch (tfmot cannot prune depthwise kernels, SNIP skips separable
convolutions, ...) is each method's own rule; this module only reads. It imports no
TensorFlow itself: the layers passed in carry it.
"""

from __future__ import annotations


def unwrap(layer):
    """The layer inside a tfmot wrapper (PruneLowMagnitude, ClusterWeights, QuantizeWrapper), or the layer."""
    return getattr(layer, "layer", layer)


def main_kernel(layer):
    """The layer's main weight variable (depthwise kernel, else kernel), or None."""
    layer = unwrap(layer)
    k = getattr(layer, "depthwise_kernel", None)
    return k if k is not None else getattr(layer, "kernel", None)


def _is_softmax(activation) -> bool:
    activation = getattr(activation, "activation", activation)  # QAT's QuantizeAwareActivation holds the original
    return activation is not None and getattr(activation, "__name__", "") == "softmax"


def ends_in_softmax(model) -> bool:
    """True if the model's output is already a probability distribution."""
    last = unwrap(model.layers[-1])
    if type(last).__name__ == "Softmax":
        return True
    return _is_softmax(getattr(last, "activation", None))
