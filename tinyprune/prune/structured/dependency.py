"""Channel dependency graph of a tf_keras model: which channels must be removed together.

Every channel of every tensor in the model is an *element*. A layer that creates channels
(Conv, Dense, SeparableConv: a *producer*) makes fresh elements; layers that act on each
channel on its own (BatchNormalization, activations, pooling, padding, DepthwiseConv...) pass
them through; element-wise merges (Add, Multiply, ...) tie the elements of their inputs
together, Concatenate on the channel axis lays them side by side (offsets), Flatten and
Reshape repeat them over positions, DepthwiseConv2D with depth_multiplier m repeats each one
m times. Tied elements form a *component* (union-find): one channel that can only be removed
everywhere at once. Producers whose components are tied form a `Group`: the unit the pruner
and the budget search work on. A group's `channels` are its components.

Channels that must not change are *fixed*: the model's inputs and outputs, the outputs of
ignored layers, and the channels entering a layer tinyprune cannot prune through. Such a
layer (an unknown or custom class, a nested model, a shared layer, a non-element-wise
activation like softmax, LayerNormalization over the channel axis, channels_first data) is
a *boundary*: the channels feeding it are kept and its output is a fixed source; `notes`
says which layers were treated so and why.

TensorFlow functions called on Keras tensors (`x + 3.0`, `tf.nn.relu6(x)`, ...) are op layers
(TFOpLambda): the element-wise ones (ELEMENTWISE_OPS) tie their tensor operands like Add and
let scalar constants broadcast; any other op, slicing, or a constant with more than one value
is a boundary named by its op. `parse_inbound_node` reads every serialized inbound-node form
(layer entries, an op layer's bare or nested entries, constants, keyword tensors).

For every weight that has a channel axis the graph records a `ParamSlice` (which weight,
which axis, which element sits at each position along it): the pruner slices weights by it,
and the importance criteria sum saliency over it.

This module only analyses a model (Sequential or functional, channels_last); it does not
score, prune or rebuild anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyprune.errors import ModelLoadError

# Activations that act on each value alone: a removed channel cannot change another one.
ELEMENTWISE_ACTIVATIONS = frozenset({
    "linear", "relu", "relu6", "sigmoid", "tanh", "elu", "selu", "softplus", "softsign", "swish",
    "silu", "gelu", "hard_sigmoid", "exponential", "leaky_relu", "mish", "hard_swish", "hard_silu",
})

PRODUCERS = frozenset({"Conv1D", "Conv2D", "Conv3D", "Dense", "SeparableConv1D", "SeparableConv2D"})
DEPTHWISE = frozenset({"DepthwiseConv1D", "DepthwiseConv2D"})
# Layers whose output channel c depends only on input channel c and that hold no per-channel weights.
_DIMS = ("1D", "2D", "3D")
PASS_THROUGH = frozenset(
    {"Activation", "ReLU", "LeakyReLU", "ELU", "ThresholdedReLU", "Softmax", "Dropout", "GaussianNoise",
     "GaussianDropout", "AlphaDropout", "ActivityRegularization", "RepeatVector", "LayerNormalization",
     "Identity", "StochasticDepth"}  # StochasticDepth: tf_keras.applications.convnext, identity at inference
    | {f"{kind}{d}" for d in _DIMS for kind in (
        "MaxPooling", "AveragePooling", "GlobalMaxPooling", "GlobalAveragePooling", "ZeroPadding",
        "Cropping", "UpSampling", "SpatialDropout")}
)
PER_CHANNEL_WEIGHTS = frozenset({"BatchNormalization", "PReLU"})
ELEMENTWISE_MERGES = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})
SUPPORTED = (PRODUCERS | DEPTHWISE | PASS_THROUGH | PER_CHANNEL_WEIGHTS | ELEMENTWISE_MERGES
             | {"InputLayer", "Flatten", "Reshape", "Concatenate", "Rescaling", "LayerScale"})
_MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})
# Layer classes with a known reason to stop at (the others outside SUPPORTED get a generic one).
BOUNDARY_REASONS = {
    "Normalization": "keeps a mean and variance per channel in its config",
    "Permute": "moves the channel axis",
    "Embedding": "has no input channels to follow",
}
# Op layers tf_keras records for TensorFlow functions called on Keras tensors (`x + 3.0`,
# `tf.nn.relu6(x)`, ...), by their `function` name. The ones below act on each value alone
# (with broadcasting against tensors or scalar constants), so channel c of the output depends
# on channel c of the inputs only: they join their tensor inputs' channels, like Add/Multiply.
OP_LAYERS = frozenset({"TFOpLambda", "SlicingOpLambda"})
ELEMENTWISE_OPS = frozenset(
    {f"__operators__.{op}" for op in ("add", "sub", "mul", "truediv", "neg", "pow")}
    | {f"math.{op}" for op in (
        "add", "add_n", "subtract", "multiply", "scalar_mul", "truediv", "divide", "divide_no_nan",
        "multiply_no_nan", "floordiv", "maximum", "minimum", "pow", "squared_difference",
        "abs", "negative", "sigmoid", "tanh", "exp", "log", "log1p", "sqrt", "rsqrt", "square",
        "reciprocal", "softplus", "softsign", "round", "floor", "ceil", "sign", "erf", "sin", "cos")}
    | {f"nn.{op}" for op in ("relu", "relu6", "elu", "selu", "silu", "swish", "gelu", "leaky_relu",
                              "sigmoid", "tanh", "softplus", "softsign")}
    | {"clip_by_value", "identity", "cast", "stop_gradient"}
)


def _is_scalar(value) -> bool:
    """A Python number or an array with a single value (it broadcasts over every channel)."""
    if isinstance(value, (bool, int, float)):
        return True
    try:
        return int(np.size(np.asarray(value, dtype=np.float64))) == 1
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class ParamSlice:
    """Weight `weight_index` of `layer` has one channel element per position along `axis`.

    role: "out" (a producer's output channels), "in" (a consumer's input channels: removing
    the channel removes this slice), or "through" (per-channel weights of a pass-through layer).
    """

    layer: str
    weight_index: int
    weight_name: str
    axis: int
    ids: np.ndarray
    role: str


@dataclass
class LayerNode:
    """One call of a layer: its class, the element ids of its inputs and output channels."""

    name: str
    class_name: str
    kind: str  # input | producer | through | merge | reshape | boundary
    inputs: list[np.ndarray | None]
    out_ids: np.ndarray | None  # None: fixed channels of unknown count
    config: dict


@dataclass
class Group:
    """Channels that are removed together.

    id: the name of the first layer (in model order) that produces these channels (for a
        group with no producer: the input or boundary layer, "name#k" for call k of a shared
        layer); stable across pruning steps, so it can key `group_keep`.
    layers: every layer whose inputs, outputs or weights these channels touch, in model order.
    producers: the layers that create the channels (their filter/unit counts shrink).
    channels: how many removable units the group has (components; one may span several
        positions, e.g. after Flatten or a depth multiplier).
    fixed: per channel, True when it must be kept (model input/output, ignored, boundary).
    prunable: at least one channel can go and at least one will stay.
    """

    id: str
    layers: list[str]
    producers: list[str]
    channels: int
    fixed: np.ndarray
    components: np.ndarray = field(repr=False)
    reasons: list[str] = field(default_factory=list)

    @property
    def fixed_channels(self) -> int:
        return int(self.fixed.sum())

    @property
    def prunable(self) -> bool:
        return bool((~self.fixed).any()) and self.channels > 1

    @property
    def min_keep(self) -> int:
        """The fewest channels this group can keep: every fixed one, and at least one."""
        return max(1, self.fixed_channels)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []
        self.fixed: list[bool] = []

    def new(self, n: int, fixed: bool = False) -> np.ndarray:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        self.fixed.extend([fixed] * n)
        return np.arange(start, start + n, dtype=np.int64)

    def find(self, a: int) -> int:
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:
            self.parent[a], a = root, self.parent[a]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = min(ra, rb), max(ra, rb)  # the older element stays the root: stable order
            self.parent[hi] = lo
            self.fixed[lo] = self.fixed[lo] or self.fixed[hi]

    def fix(self, ids: np.ndarray | None) -> None:
        if ids is None:
            return
        for e in ids:
            self.fixed[self.find(int(e))] = True

    def roots(self) -> np.ndarray:
        return np.array([self.find(i) for i in range(len(self.parent))], dtype=np.int64)


@dataclass
class DependencyGraph:
    """The channel dependency graph of one model (see the module docstring).

    groups: every group, prunable or not, ordered by their first producer.
    nodes: every layer call in model order.
    slices: every weight axis that carries channels.
    notes: one line per layer treated as a boundary, saying why.
    root: element id -> component id; component_group / component_channel: component id ->
        its group's index in `groups` and its channel index within that group (-1 if none).
    """

    model: object
    groups: list[Group]
    nodes: list[LayerNode]
    slices: list[ParamSlice]
    notes: list[str]
    root: np.ndarray
    component_group: np.ndarray
    component_channel: np.ndarray

    def group(self, group_id: str) -> Group:
        for g in self.groups:
            if g.id == group_id:
                return g
        raise KeyError(group_id)

    def groups_of_layer(self, layer_name: str) -> list[Group]:
        """The groups whose channels `layer_name` produces or passes on (its output side)."""
        return [g for g in self.groups if layer_name in g.producers] or \
            [g for g in self.groups if layer_name in g.layers and self._outputs_in(layer_name, g)]

    def _outputs_in(self, layer_name: str, group: Group) -> bool:
        gi = self.groups.index(group)
        for node in self.nodes:
            if node.name == layer_name and node.out_ids is not None and len(node.out_ids):
                return bool((self.component_group[self.root[node.out_ids]] == gi).any())
        return False

    def locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(group index, channel index) for each element id."""
        comps = self.root[ids]
        return self.component_group[comps], self.component_channel[comps]

    def element_keep(self, group_kept: dict[str, np.ndarray | list[int]]) -> np.ndarray:
        """A bool per element: kept unless its group is in `group_kept` and its channel is not listed."""
        comp_keep = np.ones(len(self.root), dtype=bool)
        for gi, g in enumerate(self.groups):
            if g.id not in group_kept:
                continue
            mask = np.zeros(g.channels, dtype=bool)
            mask[np.asarray(group_kept[g.id], dtype=np.int64)] = True
            comp_keep[g.components[~mask]] = False
        return comp_keep[self.root]

    def summary(self) -> list[dict]:
        """One row per group: id, channels, fixed, prunable, producers, layers."""
        return [{"id": g.id, "channels": g.channels, "fixed": g.fixed_channels, "prunable": g.prunable,
                 "producers": list(g.producers), "layers": list(g.layers)} for g in self.groups]


# --------------------------------------------------------------------------------------------
# reading the model


def _is_sequential(model) -> bool:
    from tinyprune.tfsetup import keras

    return isinstance(model, keras.Sequential)


def check_graph_model(model) -> None:
    """Refuse a subclassed model: the graph needs a Sequential or functional layer graph."""
    from tinyprune.tfsetup import keras

    if not isinstance(model, keras.Model) or not (_is_sequential(model) or getattr(model, "_is_graph_network", False)):
        raise ModelLoadError(
            f"{type(model).__name__} is a subclassed model; structured pruning needs a Sequential or "
            "functional tf_keras model: rebuild it with the functional API"
        )
    if not model.built or not getattr(model, "inputs", None):
        raise ModelLoadError(
            f"model '{model.name}' has no known input shape; build it (keras.Input(...) or model.build(shape)) first"
        )


_CONSTANT = "_CONSTANT_VALUE"  # tf_keras's marker for a constant in place of a tensor


@dataclass
class CallInputs:
    """What one layer call reads, from its serialized inbound node.

    keys: the tensors it reads, as (layer name, node index, tensor index): those of the first
        argument (in order), then those passed by keyword (e.g. `y` of `tf.math.multiply`).
    constants: the numbers or arrays it takes in place of tensors or as keyword operands
        (e.g. the 3.0 of `x + 3.0`); strings, booleans and None (options such as a name or
        a dtype) are left out.
    """

    keys: list[tuple[str, int, int]]
    constants: list[object]


def _is_ref(x) -> bool:
    """A serialized tensor reference: [layer name, node index, tensor index(, kwargs)]."""
    return (isinstance(x, (list, tuple)) and len(x) in (3, 4) and isinstance(x[0], str)
            and isinstance(x[1], int) and not isinstance(x[1], bool)
            and (x[0] == _CONSTANT or (isinstance(x[2], int) and not isinstance(x[2], bool))))


def _kwarg_inputs(value, keys: list, constants: list) -> None:
    """Tensor references and numeric constants inside a keyword argument (any nesting)."""
    if isinstance(value, (list, tuple)) and len(value) == 3 and _is_ref(value):
        keys.append((value[0], value[1], value[2]))
    elif isinstance(value, dict):
        if value.get("class_name") == "__tuple__":
            _kwarg_inputs(value.get("items", []), keys, constants)
        else:
            for v in value.values():
                _kwarg_inputs(v, keys, constants)
    elif isinstance(value, (list, tuple)) and any(isinstance(v, (list, tuple, dict)) for v in value):
        for v in value:
            _kwarg_inputs(v, keys, constants)
    elif isinstance(value, (bool, str)) or value is None:
        return
    else:
        constants.append(value)


def parse_inbound_node(node) -> CallInputs:
    """Read one serialized inbound node in any form tf_keras writes.

    A layer's node is a list of entries [layer, node index, tensor index, kwargs]; an op layer
    (TFOpLambda, SlicingOpLambda) keeps its first argument's structure, so its node may be one
    bare entry or a nested list or dict of entries; an entry may be a constant
    ["_CONSTANT_VALUE", -1, value, kwargs]; kwargs may hold further tensor references.
    """
    entries: list = []

    def walk(x) -> None:
        if _is_ref(x):
            entries.append(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)

    walk(node)
    keys: list[tuple[str, int, int]] = []
    constants: list[object] = []
    kwargs: dict = {}
    for e in entries:
        if e[0] == _CONSTANT:
            _kwarg_inputs(e[2], [], constants)
        else:
            keys.append((e[0], int(e[1]), int(e[2])))
        if len(e) == 4 and isinstance(e[3], dict):
            kwargs = e[3]  # the same kwargs are repeated on every entry of the first argument
    for k, v in kwargs.items():
        if k != "name":
            _kwarg_inputs(v, keys, constants)
    return CallInputs(keys, constants)


def _skips_first_node(layer) -> bool:
    """True for a nested model built on its own Input: tf_keras leaves its first (internal) node
    out of the config, so the config's node k is the layer's node k + 1."""
    try:
        from tf_keras.src.engine.functional import _should_skip_first_node
    except ImportError:  # pragma: no cover - older layouts
        return False
    return bool(_should_skip_first_node(layer))


def layer_calls(model) -> list[tuple[str, str, dict, CallInputs, int]]:
    """(call name, class name, layer config, inputs, node index) for every layer call, in order.

    The call name is the layer name, or "name#k" for call k of a shared layer; the node index
    is the one other layers' references use for this call's outputs. Sequential models are read
    as a chain whose first input is the model input, named "__input__" when there is no InputLayer.
    """
    cfg = model.get_config()
    calls = []
    if _is_sequential(model):
        prev: tuple[str, int, int] = ("__input__", 0, 0)
        for entry in cfg["layers"]:
            name = entry["config"]["name"]
            calls.append((name, entry["class_name"], entry["config"],
                          CallInputs([] if entry["class_name"] == "InputLayer" else [prev], []), 0))
            prev = (name, 0, 0)
        return calls
    for entry in cfg["layers"]:
        nodes = entry.get("inbound_nodes") or [[]]
        offset = 1 if entry["class_name"] not in ("InputLayer",) and entry["class_name"] in _MODEL_CLASSES \
            and _skips_first_node(model.get_layer(entry["name"])) else 0
        for k, node in enumerate(nodes):
            name = f"{entry['name']}#{k}" if len(nodes) > 1 else entry["name"]  # shared: one call per node
            calls.append((name, entry["class_name"], entry["config"], parse_inbound_node(node), k + offset))
    return calls


def model_calls(model) -> list[tuple[str, str, dict, list[tuple[str, int, int]]]]:
    """(layer name, class name, layer config, input tensor keys) for every layer call, in order.

    A tensor key is (layer name, node index, tensor index); keyword tensors are included (see
    `layer_calls` for constants and node indices).
    """
    return [(name, cls, config, inputs.keys) for name, cls, config, inputs, _ in layer_calls(model)]


def _output_keys(model) -> list[tuple[str, int, int]]:
    cfg = model.get_config()
    if _is_sequential(model):
        return [(cfg["layers"][-1]["config"]["name"], 0, 0)]
    return [tuple(k) for k in cfg["output_layers"]]


def _activation_name(config: dict) -> str:
    act = config.get("activation", "linear")
    if isinstance(act, dict):
        act = act.get("config", {}).get("name", act.get("class_name", "?"))
    return str(act or "linear")


def _channels_last(config: dict) -> bool:
    return config.get("data_format") in (None, "channels_last")


def _axis_is_last(axis, rank: int) -> bool:
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    return any(a == -1 or a == rank - 1 for a in axes)


def _weight_names(layer) -> list[str]:
    return [w.name.split("/")[-1].split(":")[0] for w in layer.weights]


class _Builder:
    """Walks the layer calls once, assigning element ids and recording slices and boundaries."""

    def __init__(self, model, ignore: set[str]):
        self.model = model
        self.ignore = ignore
        self.uf = _UnionFind()
        self.tensors: dict[tuple[str, int, int], np.ndarray | None] = {}
        self.nodes: list[LayerNode] = []
        self.slices: list[ParamSlice] = []
        self.notes: list[str] = []
        self.sources: dict[str, np.ndarray] = {}  # layer -> the element ids it created
        self.source_order: list[str] = []
        self._kind = "boundary"  # the kind of the layer call being visited (set by _visit and helpers)

    # -- helpers ------------------------------------------------------------------------
    def _fresh(self, name: str, n: int | None, fixed: bool) -> np.ndarray | None:
        if n is None:
            return None
        ids = self.uf.new(n, fixed)
        self.sources[name] = ids
        self.source_order.append(name)
        return ids

    def _slice(self, layer, name: str, weight: str, axis: int, ids: np.ndarray | None, role: str) -> None:
        if ids is None:
            return
        names = _weight_names(layer)
        if weight in names:
            self.slices.append(ParamSlice(name, names.index(weight), weight, axis, ids, role))

    def _boundary(self, name: str, cls: str, inputs, out_len: int | None, why: str) -> np.ndarray | None:
        self._kind = "boundary"
        for ids in inputs:
            self.uf.fix(ids)
        self.notes.append(f"layer '{name}' ({cls}) {why}; treated as a boundary: the channels entering it "
                          "and leaving it are kept")
        return self._fresh(name, out_len, fixed=True)

    # -- the walk ---------------------------------------------------------------------------
    def run(self) -> None:
        model = self.model
        if _is_sequential(model):
            shape = model.input_shape
            self.tensors[("__input__", 0, 0)] = self._fresh("__input__", shape[-1], fixed=True)
        for name, cls, config, call, node_index in layer_calls(model):
            base = name.split("#")[0]
            inputs = [self.tensors.get(k) for k in call.keys]
            out = self._visit(name, base, cls, config, call, inputs)
            self.tensors[(base, node_index, 0)] = out
            kind = self._kind
            self.nodes.append(LayerNode(name, cls, kind, inputs, out, config))
            if base in self.ignore:
                self.uf.fix(out)
        for key in _output_keys(model):
            self.uf.fix(self.tensors.get(key))

    def _visit(self, name, base, cls, config, call: CallInputs, inputs):
        model = self.model
        layer = model.get_layer(base) if cls != "InputLayer" or not _is_sequential(model) else None
        self._kind = "boundary"
        if cls == "InputLayer":
            self._kind = "input"
            shape = config.get("batch_input_shape") or config.get("batch_shape")
            return self._fresh(name, shape[-1] if shape else None, fixed=True)
        try:
            out_shape = layer.output_shape
        except (AttributeError, RuntimeError):
            out_shape = None
        if isinstance(out_shape, list) or out_shape is None:
            return self._boundary(name, cls, inputs, None, "has several outputs or no known output shape")
        out_len = out_shape[-1] if len(out_shape) > 1 else None
        if "#" in name:
            return self._boundary(name, cls, inputs, out_len, "is shared (called more than once)")
        if any(k[2] != 0 for k in call.keys):
            return self._boundary(name, cls, inputs, out_len, "reads a second output of a layer")
        if cls in OP_LAYERS:
            return self._op_layer(name, cls, config, call, inputs, out_len)
        if cls in _MODEL_CLASSES:
            return self._boundary(name, cls, inputs, out_len, "is a nested model")
        if cls in BOUNDARY_REASONS:
            return self._boundary(name, cls, inputs, out_len, BOUNDARY_REASONS[cls])
        if cls not in SUPPORTED:
            return self._boundary(name, cls, inputs, out_len, "is not a layer tinyprune can prune through")
        if not _channels_last(config):
            return self._boundary(name, cls, inputs, out_len, "uses channels_first data")
        act = _activation_name(config)
        if "activation" in config and act not in ELEMENTWISE_ACTIVATIONS and cls not in PRODUCERS:
            return self._boundary(name, cls, inputs, out_len, f"applies '{act}', which mixes channels")
        x = inputs[0] if inputs else None
        if cls in PRODUCERS:
            return self._producer(layer, name, cls, config, x, out_len, act)
        if cls in DEPTHWISE:
            self._kind = "through"
            m = int(config.get("depth_multiplier", 1))
            out = None if x is None else np.repeat(x, m)
            self._slice(layer, name, "depthwise_kernel", -2, x, "through")
            self._slice(layer, name, "bias", 0, out, "through")
            return out
        if cls == "BatchNormalization":
            rank = len(layer.input_shape)
            if not _axis_is_last(config.get("axis", -1), rank) or len(list(np.atleast_1d(config.get("axis", -1)))) != 1:
                return self._boundary(name, cls, inputs, out_len, "normalizes over an axis that is not the channel axis")
            self._kind = "through"
            for w in ("gamma", "beta", "moving_mean", "moving_variance"):
                self._slice(layer, name, w, 0, x, "through")
            return x
        if cls == "Rescaling":
            if not all(_is_scalar(config.get(k, 0.0)) for k in ("scale", "offset")):
                return self._boundary(name, cls, inputs, out_len, "scales each channel by its own constant")
            self._kind = "through"
            return x
        if cls == "LayerScale":  # tf_keras.applications.convnext: one gamma per channel
            self._kind = "through"
            self._slice(layer, name, "gamma", 0, x, "through")
            return x
        if cls == "PReLU":
            self._kind = "through"
            alpha_shape = layer.get_weights()[0].shape
            if x is not None and alpha_shape[-1] == len(x):
                self._slice(layer, name, "alpha", len(alpha_shape) - 1, x, "through")
            return x
        if cls == "LayerNormalization" and _axis_is_last(config.get("axis", -1), len(layer.input_shape)):
            return self._boundary(name, cls, inputs, out_len,
                                  "normalizes over the channel axis, so removing one channel changes the others")
        if cls == "Softmax" and _axis_is_last(config.get("axis", -1), len(layer.input_shape)):
            return self._boundary(name, cls, inputs, out_len, "normalizes over the channel axis (softmax)")
        if cls in PASS_THROUGH:
            self._kind = "through"
            return x
        if cls in ("Flatten", "Reshape"):
            return self._reshape(name, cls, inputs, x, out_shape)
        if cls in ELEMENTWISE_MERGES or (cls == "Concatenate" and not _axis_is_last(config.get("axis", -1), len(out_shape))):
            return self._merge(name, cls, inputs, out_len)
        if cls == "Concatenate":
            if any(ids is None for ids in inputs):
                return self._boundary(name, cls, inputs, out_len, "concatenates a tensor of unknown channel count")
            self._kind = "merge"
            return np.concatenate(inputs)
        raise AssertionError(cls)  # every SUPPORTED class is handled above

    def _producer(self, layer, name, cls, config, x, out_len, act):
        self._kind = "producer"
        if cls == "Dense" or cls.startswith("Conv"):
            if cls != "Dense" and int(config.get("groups", 1)) != 1:
                return self._boundary(name, cls, [x], out_len, "is a grouped convolution")
            self._slice(layer, name, "kernel", 0 if cls == "Dense" else -2, x, "in")
        else:  # separable: per-input-channel depthwise filters, then a pointwise mix
            m = int(config.get("depth_multiplier", 1))
            self._slice(layer, name, "depthwise_kernel", -2, x, "in")
            self._slice(layer, name, "pointwise_kernel", -2, None if x is None else np.repeat(x, m), "in")
        fixed = act not in ELEMENTWISE_ACTIVATIONS
        if fixed:
            self.notes.append(f"layer '{name}' ({cls}) applies '{act}', which mixes channels: its output channels are kept")
        out = self._fresh(name, out_len, fixed=fixed)
        self._slice(layer, name, "kernel" if cls == "Dense" or cls.startswith("Conv") else "pointwise_kernel",
                    -1, out, "out")
        self._slice(layer, name, "bias", 0, out, "out")
        return out

    def _reshape(self, name, cls, inputs, x, out_shape):
        dims = out_shape[1:]
        if x is None or any(d is None for d in dims):
            return self._boundary(name, cls, inputs, out_shape[-1], "has an input or output of unknown size")
        total = int(np.prod(dims))
        if total % len(x):
            return self._boundary(name, cls, inputs, out_shape[-1], "does not keep whole channels")
        flat = np.tile(x, total // len(x))  # channels_last memory order: the channel index runs fastest
        rows = flat.reshape(-1, dims[-1])
        if not (rows == rows[0]).all():
            return self._boundary(name, cls, inputs, out_shape[-1], "does not keep the channel axis last")
        self._kind = "reshape"
        return rows[0].copy()

    def _op_layer(self, name, cls, config, call: CallInputs, inputs, out_len):
        """A TFOpLambda (tf.math / tf.nn / tf.__operators__ op): element-wise ops join their
        tensor inputs' channels; anything else, or a non-scalar constant operand, is a boundary."""
        fn = str(config.get("function", "?"))
        label = f"tf.{fn}"
        if cls != "TFOpLambda" or fn not in ELEMENTWISE_OPS:
            what = "slices its input" if cls == "SlicingOpLambda" else f"is the TensorFlow op '{label}'"
            return self._boundary(name, cls, inputs, out_len,
                                  f"{what}, which is not an element-wise op tinyprune prunes through")
        for const in call.constants:
            if not _is_scalar(const):
                return self._boundary(name, cls, inputs, out_len,
                                      f"applies '{label}' with a constant of shape {list(np.shape(const))}, "
                                      "which would have to be cut per channel")
        if not inputs:
            return self._boundary(name, cls, inputs, out_len, f"applies '{label}' to constants only")
        out = self._merge(name, cls, inputs, out_len)
        if self._kind != "boundary" and (out is None or out_len is None or len(out) != out_len):
            return self._boundary(name, cls, inputs, out_len,
                                  f"applies '{label}' with broadcasting that does not keep the channel axis")
        return out

    def _merge(self, name, cls, inputs, out_len):
        wide = [ids for ids in inputs if ids is None or len(ids) != 1]  # a 1-channel input broadcasts
        if not wide:
            self._kind = "merge"
            return inputs[0]
        if any(ids is None for ids in wide) or len({len(ids) for ids in wide}) != 1:
            return self._boundary(name, cls, inputs, out_len, "merges tensors whose channels do not line up")
        self._kind = "merge"
        first = wide[0]
        for other in wide[1:]:
            for a, b in zip(first, other):
                self.uf.union(int(a), int(b))
        return first


def build_graph(model, ignore: tuple[str, ...] | list[str] | set[str] = ()) -> DependencyGraph:
    """The channel dependency graph of a Sequential or functional tf_keras model.

    `ignore`: layer names whose output channels are kept (their groups lose those channels'
    prunability). The model's output channels are always kept (same output shape).
    Raises ModelLoadError for a subclassed model. Unsupported layers become boundaries,
    listed in `graph.notes`.
    """
    check_graph_model(model)
    b = _Builder(model, set(ignore))
    b.run()
    uf = b.uf
    root = uf.roots()
    n = len(root)
    comp_fixed = np.array([uf.fixed[r] for r in range(n)], dtype=bool)

    # producers tied through shared components form one group
    order = {name: i for i, name in enumerate(b.source_order)}
    comp_source: dict[int, str] = {}
    parent = {s: s for s in b.source_order}

    def find(s: str) -> str:
        while parent[s] != s:
            parent[s] = parent[parent[s]]
            s = parent[s]
        return s

    for s in b.source_order:
        for e in b.sources[s]:
            c = int(root[e])
            if c in comp_source:
                a, z = find(comp_source[c]), find(s)
                if a != z:
                    lo, hi = sorted((a, z), key=order.get)
                    parent[hi] = lo
            else:
                comp_source[c] = s
    members: dict[str, list[str]] = {}
    for s in b.source_order:
        members.setdefault(find(s), []).append(s)

    component_group = np.full(n, -1, dtype=np.int64)
    component_channel = np.full(n, -1, dtype=np.int64)
    groups: list[Group] = []
    real_sources = {nd.name for nd in b.nodes if nd.kind == "producer"}
    for gid, srcs in members.items():
        comps: list[int] = []
        seen: set[int] = set()
        for s in srcs:
            for e in b.sources[s]:
                c = int(root[e])
                if c not in seen:
                    seen.add(c)
                    comps.append(c)
        gi = len(groups)
        comps_arr = np.array(comps, dtype=np.int64)
        component_group[comps_arr] = gi
        component_channel[comps_arr] = np.arange(len(comps))
        producers = [s for s in srcs if s in real_sources]
        groups.append(Group(id=producers[0] if producers else gid, layers=[], producers=producers,
                            channels=len(comps), fixed=comp_fixed[comps_arr], components=comps_arr))

    # layers touching each group, in model order
    for nd in b.nodes:
        touched: set[int] = set()
        for ids in [*nd.inputs, nd.out_ids]:
            if ids is not None and len(ids):
                touched.update(int(g) for g in np.unique(component_group[root[ids]]) if g >= 0)
        for gi in sorted(touched):
            if nd.name not in groups[gi].layers:
                groups[gi].layers.append(nd.name)
    for g in groups:
        if g.fixed.any():
            g.reasons = [note for note in b.notes if any(f"'{ly}'" in note for ly in g.layers)]
    return DependencyGraph(model, groups, b.nodes, b.slices, b.notes, root, component_group, component_channel)
