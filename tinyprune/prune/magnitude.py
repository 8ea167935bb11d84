"""Magnitude pruning with tfmot: schedules, per-layer targets, M:N and block sparsity, PQAT, strip.

tfmot's `prune_low_magnitude` wraps each prunable layer; during fine-tuning its
`UpdatePruningStep` callback advances a step counter and, every `frequency` steps between
`begin_step` and `end_step`, the wrapper recomputes a mask that zeroes the smallest weights
(ConstantSparsity: a fixed target; PolynomialDecay: initial -> final along a power curve).
`strip_pruning` then removes the wrappers and leaves the zeros in the kernels.

Model vs ephemeral pruning: while the wrappers exist the masks are *ephemeral* (applied in the
forward pass, stored beside the weights); after `strip_pruning` they are *model* pruning (the
zeros are the weights). `prune_magnitude` always returns the stripped model, so what it saves is
model pruning; the report says so.

What it does not do: shrink flash. tfmot only masks weights, so an int8 .tflite of a 50%, 80% or
90% sparse model has exactly the dense size. Flash shrinks only by structured removal or by a
compression TFLM decodes (`tinyprune.prune.clustering` + `firmware_export.lut`).

TensorFlow is imported lazily (inside functions), so schedules and option parsing can be
checked without the ~5 s TensorFlow start-up.
"""

from __future__ import annotations

import dataclasses
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from tinyprune.keras_facts import main_kernel
from tinyprune.load.data import Dataset
from tinyprune.errors import ConfigError, InputFileError, UnsupportedLayerError

# With an automatic frequency the ramp from initial to final sparsity is done in this many mask
# updates. tfmot's default frequency of 100 steps assumes long training: with a short fine-tune
# the last update misses end_step and the final sparsity is never reached (measured here: 73%
# for an 80% target). 16 updates follow the polynomial curve closely and cost little.
AUTO_MASK_UPDATES = 16
# With end_step = -1 the ramp ends at this fraction of training, so the network fine-tunes at the
# final sparsity for the rest (Zhu & Gupta 2017, "To prune, or not to prune", prune then recover).
AUTO_END_FRACTION = 0.75
PQAT_LR = 1e-4  # QAT fine-tuning rate: 10x below Adam's default, as tfmot's PQAT example fine-tunes
PRUNING_MODE = "model"  # see module docstring: the saved model holds the zeros, no wrappers


@dataclass(frozen=True)
class Schedule:
    """A tfmot pruning schedule. `kind` is "polynomial" (PolynomialDecay) or "constant"."""

    kind: str = "polynomial"
    initial_sparsity: float = 0.0
    final_sparsity: float = 0.5
    begin_step: int = 0
    end_step: int = -1  # -1: automatic (AUTO_END_FRACTION of training)
    frequency: int | None = None  # None: automatic (AUTO_MASK_UPDATES over the ramp)
    power: float = 3.0

    def validate(self) -> None:
        if self.kind not in ("polynomial", "constant"):
            raise ConfigError(f"unknown schedule {self.kind!r}; use polynomial or constant")
        for name, v in (("initial sparsity", self.initial_sparsity), ("final sparsity", self.final_sparsity)):
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {v}")
        if self.kind == "polynomial" and self.final_sparsity < self.initial_sparsity:
            raise ConfigError(
                f"final sparsity {self.final_sparsity} is below initial sparsity {self.initial_sparsity}; "
                "a pruning schedule only removes weights"
            )
        if self.begin_step < 0:
            raise ConfigError(f"begin step must be >= 0, got {self.begin_step}")
        if self.end_step != -1 and self.end_step <= self.begin_step:
            raise ConfigError(f"end step {self.end_step} must be after begin step {self.begin_step}")
        if self.frequency is not None and self.frequency < 1:
            raise ConfigError(f"pruning frequency must be at least 1 step, got {self.frequency}")
        if self.power <= 0:
            raise ConfigError(f"polynomial power must be > 0, got {self.power}")

    def resolve(self, total_steps: int) -> "ResolvedSchedule":
        """Fix end step and frequency for a fine-tune of `total_steps` steps."""
        self.validate()
        last = max(1, total_steps - 1)  # the last step whose mask update surely runs
        if self.begin_step >= last:
            raise ConfigError(f"begin step {self.begin_step} is not before the end of fine-tuning "
                              f"({total_steps} steps); lower it or train more epochs")
        notes: list[str] = []
        if self.end_step == -1:
            end = max(self.begin_step + 1, int(total_steps * AUTO_END_FRACTION))
            if self.frequency is None:
                freq = max(1, (end - self.begin_step) // AUTO_MASK_UPDATES)
                end = self.begin_step + freq * ((end - self.begin_step) // freq)
            else:
                freq = self.frequency
                end = min(last, self.begin_step + freq * max(1, (end - self.begin_step) // freq))
        else:
            end = self.end_step
            ramp = end - self.begin_step
            freq = self.frequency if self.frequency is not None else _divisor_near(ramp, ramp / AUTO_MASK_UPDATES)
        last_update = self.begin_step + freq * ((min(end, last) - self.begin_step) // freq)
        reached = self.sparsity_at(last_update, end)
        if end > last:
            notes.append(f"end step {end} is after the last training step {last}; "
                         f"the last mask update (step {last_update}) gives {reached:.1%}")
        elif last_update != end and self.kind == "polynomial":
            notes.append(f"frequency {freq} does not divide end-begin ({end - self.begin_step}); "
                         f"the last mask update (step {last_update}) gives {reached:.1%}")
        return ResolvedSchedule(self, self.begin_step, end, freq, last_update, reached, tuple(notes))

    def sparsity_at(self, step: int, end: int) -> float:
        """The schedule's target sparsity at `step` (tfmot's PolynomialDecay formula)."""
        if self.kind == "constant":
            return self.final_sparsity
        frac = min(1.0, max(0.0, (step - self.begin_step) / max(1, end - self.begin_step)))
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (1 - frac) ** self.power

    def with_target(self, target: float) -> "Schedule":
        return dataclasses.replace(self, final_sparsity=target,
                                   initial_sparsity=min(self.initial_sparsity, target))


@dataclass(frozen=True)
class ResolvedSchedule:
    """A schedule with its end step and frequency fixed for one fine-tune."""

    schedule: Schedule
    begin_step: int
    end_step: int
    frequency: int
    last_update_step: int
    reached_sparsity: float  # the target at the last mask update
    notes: tuple[str, ...] = ()

    def to_tfmot(self, target: float | None = None):
        """The tfmot schedule object (optionally for a per-layer target)."""
        from tinyprune.tfsetup import tfmot

        s = self.schedule if target is None else self.schedule.with_target(target)
        if s.kind == "constant":
            return tfmot.sparsity.keras.ConstantSparsity(s.final_sparsity, self.begin_step, self.end_step,
                                                         self.frequency)
        return tfmot.sparsity.keras.PolynomialDecay(s.initial_sparsity, s.final_sparsity, self.begin_step,
                                                    self.end_step, s.power, self.frequency)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self.schedule), "end_step": self.end_step, "frequency": self.frequency,
                "last_update_step": self.last_update_step, "reached_sparsity": round(self.reached_sparsity, 4),
                "notes": list(self.notes)}


def _divisor_near(n: int, target: float) -> int:
    """The largest divisor of `n` that is <= max(1, target): mask updates then land on end_step."""
    best = 1
    for d in range(1, int(max(1, target)) + 1):
        if n % d == 0:
            best = d
    return best


@dataclass(frozen=True)
class PruneOptions:
    """Everything `prune_magnitude` needs besides the model and data."""

    schedule: Schedule = Schedule()
    layer_targets: Mapping[str, float] = field(default_factory=dict)  # per-layer final sparsity
    m_by_n: tuple[int, int] | None = None  # (m zeros, in every n consecutive input-channel weights)
    block_size: tuple[int, int] = (1, 1)  # Dense kernels only
    pqat: bool = False
    tensorboard_dir: str | None = None


def parse_m_by_n(text: str | None) -> tuple[int, int] | None:
    """'2:4' -> (2, 4): m zeros in every n consecutive weights (tfmot `sparsity_m_by_n`)."""
    if not text:
        return None
    try:
        m, n = (int(v) for v in str(text).split(":"))
    except ValueError:
        raise ConfigError(f"M:N sparsity must look like 2:4, got {text!r}") from None
    if not 0 < m < n:
        raise ConfigError(f"M:N sparsity needs 0 < M < N, got {m}:{n}")
    return m, n


def parse_block_size(text: str | None) -> tuple[int, int]:
    """'1x4' -> (1, 4): block height x width for Dense kernels (tfmot `block_size`)."""
    if not text:
        return (1, 1)
    try:
        h, w = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ConfigError(f"block size must look like 1x4, got {text!r}") from None
    if h < 1 or w < 1:
        raise ConfigError(f"block size must be at least 1x1, got {h}x{w}")
    return h, w


def _check_target(name: str, value: Any, source: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: sparsity for {name!r} is not a number: {value!r}") from None
    if not 0.0 <= v < 1.0:
        raise ConfigError(f"{source}: sparsity for {name!r} must be in [0, 1), got {v}")
    return v


def parse_layer_targets(pairs: tuple[str, ...] | list[str] = (), config_path: str | None = None) -> dict[str, float]:
    """Per-layer targets from NAME=S strings and/or a TOML file (CLI pairs win).

    TOML format: a `[layers]` table of `name = sparsity`, or the same keys at top level.
    """
    targets: dict[str, float] = {}
    if config_path:
        path = Path(config_path)
        if not path.is_file():
            raise InputFileError(f"{path}: no such sparsity config; give a TOML file with a [layers] table")
        try:
            doc = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path} is not valid TOML ({e}); write name = sparsity under [layers]") from None
        table = doc.get("layers", doc)
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [layers] must be a table of name = sparsity")
        for name, value in table.items():
            targets[name] = _check_target(name, value, str(path))
    for pair in pairs:
        name, sep, value = str(pair).partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"per-layer sparsity must be NAME=S, got {pair!r}")
        targets[name.strip()] = _check_target(name.strip(), value.strip(), "--layer-sparsity")
    return targets


# ---------------------------------------------------------------- model side (TensorFlow)

def check_tensorboard() -> None:
    """tfmot's PruningSummaries writes through the `tensorboard` package, which TF 2.21 does not pull in."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("--tensorboard needs the tensorboard package (pip install tensorboard); "
                          "run without --tensorboard or install it")


def is_prunable(layer) -> bool:
    """True if tfmot can prune this layer's kernel (tfmot's PruneRegistry, or a PrunableLayer)."""
    from tinyprune.tfsetup import tfmot

    if isinstance(layer, tfmot.sparsity.keras.PrunableLayer):
        return True
    # tfmot does not export its registry; tfsetup's `import tfmot` has already loaded the module.
    registry = sys.modules["tensorflow_model_optimization.python.core.sparsity.keras.prune_registry"].PruneRegistry
    return registry.supports(layer) and bool(registry._weight_names(layer))


def unprunable_layers(model) -> dict[str, str]:
    """Layers with a kernel that tfmot cannot prune (e.g. DepthwiseConv2D), name -> class."""
    return {layer.name: type(layer).__name__ for layer in model.layers
            if main_kernel(layer) is not None and not is_prunable(layer)}


def layer_sparsity(model) -> dict[str, float]:
    """Fraction of exact zeros in each layer's main kernel (Conv/Dense/Depthwise)."""
    out = {}
    for layer in model.layers:
        kernel = main_kernel(layer)
        if kernel is not None:
            out[layer.name] = float(np.mean(kernel.numpy() == 0.0))
    return out


def _input_channels(layer) -> int:
    return int(main_kernel(layer).shape[-2])


@dataclass(frozen=True)
class LayerPlan:
    """How one prunable layer is pruned."""

    name: str
    kind: str  # layer class
    pattern: str  # "unstructured", "m:n", "block hxw", or "dense" (left alone)
    target: float  # intended final sparsity
    reason: str = ""


def plan_layers(model, opts: PruneOptions) -> list[LayerPlan]:
    """Decide each layer's pattern and target; unknown or unprunable names are errors."""
    names = {layer.name: layer for layer in model.layers}
    for name in opts.layer_targets:
        if name not in names:
            close = [n for n in names if main_kernel(names[n]) is not None]
            raise ConfigError(f"no layer named {name!r} in the model; prunable layers: {', '.join(close)}")
        if not is_prunable(names[name]):
            raise UnsupportedLayerError(
                f"layer {name!r} ({type(names[name]).__name__}) cannot be pruned by tfmot; remove it from the "
                "per-layer targets")
    plans = []
    for layer in model.layers:
        if main_kernel(layer) is None or not is_prunable(layer):
            continue
        kind = type(layer).__name__
        target = opts.layer_targets.get(layer.name, opts.schedule.final_sparsity)
        if 0 < target < opts.schedule.initial_sparsity and opts.schedule.kind == "polynomial":
            raise ConfigError(f"layer {layer.name!r}: target {target} is below the initial sparsity "
                              f"{opts.schedule.initial_sparsity}")
        if opts.m_by_n and layer.name not in opts.layer_targets:
            m, n = opts.m_by_n
            cin = _input_channels(layer)
            if cin % n == 0:
                plans.append(LayerPlan(layer.name, kind, f"{m}:{n}", m / n))
                continue
            reason = f"{cin} input channels is not a multiple of {n}; pruned unstructured"
        else:
            reason = ""
        if target == 0:
            plans.append(LayerPlan(layer.name, kind, "dense", 0.0, "target 0"))
        elif opts.block_size != (1, 1) and isinstance(layer, _dense_class()):
            h, w = opts.block_size
            plans.append(LayerPlan(layer.name, kind, f"block {h}x{w}", target, reason))
        else:
            plans.append(LayerPlan(layer.name, kind, "unstructured", target, reason))
    return plans


def _dense_class():
    from tinyprune.tfsetup import keras

    return keras.layers.Dense


@dataclass
class MagnitudeResult:
    """The stripped model and the facts of the run."""

    model: Any  # stripped tf_keras model: zeros are permanent, no tfmot wrappers
    sparsity: dict[str, float] = field(default_factory=dict)  # per kernel layer, measured after strip
    accuracy: float = float("nan")
    plans: list[LayerPlan] = field(default_factory=list)
    schedule: ResolvedSchedule | None = None
    unprunable: dict[str, str] = field(default_factory=dict)  # layers tfmot cannot prune
    qat_model: Any = None  # with PQAT: the quantization-aware model to convert (sparsity preserved)
    qat_accuracy: float | None = None
    mode: str = PRUNING_MODE

    def overall_sparsity(self) -> float:
        """Zero fraction over all pruned kernels (weighted by size)."""
        pruned = {p.name for p in self.plans if p.pattern != "dense"}
        total = zeros = 0
        for layer in self.model.layers:
            k = main_kernel(layer)
            if k is not None and layer.name in pruned:
                w = k.numpy()
                total += w.size
                zeros += int(np.sum(w == 0.0))
        return zeros / total if total else 0.0


def _fresh_copy(model):
    from tinyprune.tfsetup import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def wrap_for_pruning(model, plans: list[LayerPlan], resolved: ResolvedSchedule, opts: PruneOptions):
    """Clone `model` with each planned layer wrapped by `prune_low_magnitude` (its own schedule)."""
    from tinyprune.tfsetup import keras, tfmot

    by_name = {p.name: p for p in plans if p.pattern != "dense"}

    def wrap(layer):
        plan = by_name.get(layer.name)
        if plan is None:
            return layer
        kwargs: dict[str, Any] = {"pruning_schedule": resolved.to_tfmot(plan.target)}
        if ":" in plan.pattern:
            kwargs["sparsity_m_by_n"] = opts.m_by_n
            kwargs["pruning_schedule"] = tfmot.sparsity.keras.ConstantSparsity(
                plan.target, resolved.begin_step, resolved.end_step, resolved.frequency)
        elif plan.pattern.startswith("block"):
            kwargs["block_size"] = opts.block_size
        return tfmot.sparsity.keras.prune_low_magnitude(layer, **kwargs)

    return keras.models.clone_model(_fresh_copy(model), clone_function=wrap)


def quantization_aware(model, ds: Dataset, epochs: int, batch_size: int, quiet: bool):
    """Pruning-preserving QAT (tfmot's Default8BitPrunePreserveQuantizeScheme) on a stripped model."""
    from tinyprune import training
    from tinyprune.tfsetup import keras, tfmot

    annotated = tfmot.quantization.keras.quantize_annotate_model(model)
    qat = tfmot.quantization.keras.quantize_apply(
        annotated, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme())
    if ds.is_classification:  # QAT wraps the activation, so ask the float model whether it ends in softmax
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not training.ends_in_softmax(model))
        qat.compile(keras.optimizers.Adam(PQAT_LR), loss, metrics=["accuracy"])
    else:
        training.compile_for(qat, ds, lr=PQAT_LR)
    training.train(qat, ds, max(1, epochs), batch_size, description="pruning-preserving QAT", quiet=quiet)
    return qat


def prune_magnitude(model, ds: Dataset, schedule: Schedule | None = None, epochs: int = 2, batch_size: int = 32,
                    quiet: bool = False, options: PruneOptions | None = None) -> MagnitudeResult:
    """Prune `model` by magnitude while fine-tuning for `epochs`, then strip the wrappers.

    Args:
        model: a trained tf_keras model (not modified; a copy is pruned).
        ds: training data for fine-tuning, validation data for the reported accuracy.
        schedule: the tfmot schedule (overrides `options.schedule` when given).
        options: per-layer targets, M:N, block size, PQAT, TensorBoard folder.

    Returns a MagnitudeResult whose model is stripped (model pruning: the zeros are permanent).
    """
    from tinyprune import training
    from tinyprune.load.keras3 import as_tf_keras
    from tinyprune.tfsetup import tfmot

    training.check_training_args(epochs, batch_size, min_epochs=1)
    model = as_tf_keras(model, ds)  # a Keras 3 model is translated (and checked) first
    opts = options or PruneOptions()
    if schedule is not None:
        opts = dataclasses.replace(opts, schedule=schedule)
    opts.schedule.validate()
    if epochs < 1:
        raise ConfigError(f"magnitude pruning needs at least 1 fine-tuning epoch, got {epochs}")
    steps_per_epoch = int(np.ceil(len(ds.x_train) / batch_size))
    resolved = opts.schedule.resolve(steps_per_epoch * epochs)
    plans = plan_layers(model, opts)
    if not any(p.pattern != "dense" for p in plans):
        raise ConfigError("no layer to prune: every prunable layer has target 0 (or the model has none)")
    pruned = wrap_for_pruning(model, plans, resolved, opts)
    training.compile_for(pruned, ds)
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep()]
    if opts.tensorboard_dir:
        check_tensorboard()
        callbacks.append(tfmot.sparsity.keras.PruningSummaries(log_dir=str(opts.tensorboard_dir)))
    training.train(pruned, ds, epochs, batch_size, callbacks=callbacks,
                   description=f"magnitude pruning to {opts.schedule.final_sparsity:.0%}", quiet=quiet)
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    result = MagnitudeResult(stripped, layer_sparsity(stripped), training.evaluate(stripped, ds), plans, resolved,
                             unprunable_layers(model))
    if opts.pqat:
        result.qat_model = quantization_aware(stripped, ds, epochs, batch_size, quiet)
        result.qat_accuracy = training.evaluate(result.qat_model, ds)
    return result


def check_m_by_n(weights: np.ndarray, m_by_n: tuple[int, int]) -> bool:
    """True if every block of n consecutive input-channel weights has at least m zeros.

    Keras kernels are [..., in, out]; tfmot groups along the input channels (TFLite's last axis).
    """
    m, n = m_by_n
    w = np.moveaxis(weights, -1, 0)  # [out, ..., in]
    w = w.reshape(-1, w.shape[-1])
    if w.shape[-1] % n:
        return False
    blocks = w.reshape(w.shape[0], -1, n)
    return bool(np.all(np.sum(blocks == 0.0, axis=-1) >= m))
