"""Magnitude pruning with tfmot schedules: wrap, fine-tune, strip, report sparsity.

tfmot's pruning masks weights to zero; it does not remove them. An int8 .tflite of a 50%,
80% or 90% sparse model has exactly the same size as the dense one: flash shrinks only by
structured removal (`structured/`) or by compression TFLM decodes (`compression.py`).
This module only produces the sparse (stripped) Keras model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyprune.data import Dataset
from tinyprune.errors import ConfigError
from tinyprune.tfsetup import keras, tfmot
from tinyprune import training


@dataclass(frozen=True)
class Schedule:
    """A tfmot pruning schedule. `kind` is "polynomial" (PolynomialDecay) or "constant"."""

    kind: str = "polynomial"
    initial_sparsity: float = 0.0
    final_sparsity: float = 0.5
    begin_step: int = 0
    end_step: int = -1  # -1: the last step of fine-tuning
    frequency: int = 100
    power: float = 3.0

    def validate(self) -> None:
        for name, v in (("initial sparsity", self.initial_sparsity), ("final sparsity", self.final_sparsity)):
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {v}")
        if self.kind not in ("polynomial", "constant"):
            raise ConfigError(f"unknown schedule {self.kind!r}; use polynomial or constant")
        if self.kind == "polynomial" and self.final_sparsity < self.initial_sparsity:
            raise ConfigError(
                f"final sparsity {self.final_sparsity} is below initial sparsity {self.initial_sparsity}; "
                "a pruning schedule only removes weights"
            )
        if self.end_step != -1 and self.end_step <= self.begin_step:
            raise ConfigError(f"end step {self.end_step} must be after begin step {self.begin_step}")
        if self.frequency < 1:
            raise ConfigError(f"pruning frequency must be at least 1 step, got {self.frequency}")

    def to_tfmot(self, total_steps: int):
        end = total_steps if self.end_step == -1 else self.end_step
        if self.kind == "constant":
            return tfmot.sparsity.keras.ConstantSparsity(self.final_sparsity, self.begin_step, end, self.frequency)
        return tfmot.sparsity.keras.PolynomialDecay(self.initial_sparsity, self.final_sparsity, self.begin_step,
                                                    end, self.power, self.frequency)


@dataclass
class MagnitudeResult:
    model: object  # the stripped tf_keras model: zeros are permanent, no tfmot wrappers
    sparsity: dict[str, float] = field(default_factory=dict)  # per prunable layer, after strip
    accuracy: float = float("nan")


def layer_sparsity(model) -> dict[str, float]:
    """Fraction of exact zeros in each layer's main kernel (Conv/Dense/Depthwise)."""
    out = {}
    for layer in model.layers:
        kernel = getattr(layer, "depthwise_kernel", None)
        kernel = kernel if kernel is not None else getattr(layer, "kernel", None)
        if kernel is not None:
            w = kernel.numpy()
            out[layer.name] = float(np.mean(w == 0.0))
    return out


def prune_magnitude(model, ds: Dataset, schedule: Schedule, epochs: int, batch_size: int = 32,
                    quiet: bool = False) -> MagnitudeResult:
    """Prune `model` by magnitude while fine-tuning for `epochs`, then strip the wrappers."""
    schedule.validate()
    steps_per_epoch = int(np.ceil(len(ds.x_train) / batch_size))
    total = max(1, steps_per_epoch * max(epochs, 1))
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule.to_tfmot(total))
    training.compile_for(pruned, ds)
    training.train(pruned, ds, max(epochs, 1), batch_size, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
                   description=f"magnitude pruning to {schedule.final_sparsity:.0%}", quiet=quiet)
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    return MagnitudeResult(stripped, layer_sparsity(stripped), training.evaluate(stripped, ds))
