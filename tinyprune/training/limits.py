"""Ranges and defaults of training arguments (epochs, batch size, distillation), without TensorFlow.

Every training entry point (`finetune.train`, `prune_magnitude`, the pipeline config) calls
`check_training_args`, so the CLI inherits the check. No TensorFlow here: a bad value is refused
before TensorFlow is imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyprune.errors import ConfigError

MAX_EPOCHS = 10_000  # far beyond any fine-tuning here; 2**63-1 overflows Keras's epoch loop
MAX_BATCH_SIZE = 1 << 16
LR_SCHEDULES = ("constant", "cosine")  # fine-tuning learning-rate schedules (training/schedule.py)
DEFAULT_LR_SCHEDULE = "cosine"  # the budget search's fine-tunes: measured in docs/benchmarks.md, "Sixth run"


def check_training_args(epochs: Any, batch_size: Any, min_epochs: int = 0, what: str = "epochs") -> None:
    """Raise ConfigError unless epochs is a whole number in [min_epochs, MAX_EPOCHS] and
    batch_size one in [1, MAX_BATCH_SIZE]. Every training entry point calls this first."""
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or not min_epochs <= epochs <= MAX_EPOCHS:
        raise ConfigError(f"{what} must be a whole number in [{min_epochs}, {MAX_EPOCHS}], got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ConfigError(f"batch size must be a whole number in [1, {MAX_BATCH_SIZE}], got {batch_size!r}")


def check_lr_schedule(lr_schedule: Any) -> None:
    """Raise ConfigError unless `lr_schedule` is one of LR_SCHEDULES."""
    if lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"unknown learning-rate schedule {lr_schedule!r}; use one of {', '.join(LR_SCHEDULES)}")


# Distillation defaults for small-data fine-tuning of a pruned classifier: T = 4 softens the
# teacher's distribution enough to carry its ranking of the wrong classes (Hinton et al.
# used 2..20; 4 is the common choice in Torch-Pruning / timm recipes); weight 0.7 keeps the
# labels in the loss but lets the teacher, who saw all the training data, dominate.
DEFAULT_TEMPERATURE = 4.0
DEFAULT_WEIGHT = 0.7
# Function matching (training/distillation.py): teacher-labelled mixed inputs per training row.
# 4: on 600 MNIST images the budget search gained +0.31 / +0.15 points at 12.5% / 6.25% of the
# flash and lost 0.03 at 25% (3 seeds, docs/benchmarks.md, "Fourth run"), for 5x the rows per
# distillation epoch.
DEFAULT_MIXUP = 4
MAX_MIXUP = 64  # mixes per training row at most (--mixup); MAX_MIXED_ROWS caps the total anyway
