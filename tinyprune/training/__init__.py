"""Fine-tuning: compile, train and evaluate a tf_keras model on a `Dataset`; distil from a
teacher; decay the learning rate over a run; average two fine-tunes' weights; seed a run.

Every pruning method that trains (magnitude schedules, structured fine-tuning, lottery
tickets, the budget search) goes through here. This package trains; it does not prune,
quantize or write files. `limits` (ranges of epochs and batch size) imports no TensorFlow;
the training functions are loaded on first use, so checking options never starts it.

>>> from tinyprune import training
>>> result = training.train(model, ds, epochs=2)          # doctest: +SKIP
>>> result = training.distill(student, teacher, ds, epochs=4)   # doctest: +SKIP
"""

from __future__ import annotations

import importlib

from tinyprune.training.averaging import average_weights
from tinyprune.training.limits import (DEFAULT_LR_SCHEDULE, DEFAULT_MIXUP, DEFAULT_TEMPERATURE, DEFAULT_WEIGHT,
                                      LR_SCHEDULES, MAX_BATCH_SIZE, MAX_EPOCHS, check_lr_schedule, check_training_args)

# name -> the module that defines it; these modules start TensorFlow, so they load on first use
_LAZY = {**{n: "finetune" for n in ("DEFAULT_LR", "RichProgress", "TrainResult", "compile_for", "ends_in_softmax",
                                    "evaluate", "predict", "score", "score_and_loss", "train",
                                    "validation_loss")},
         **{n: "distillation" for n in ("DistillConfig", "DistillResult", "distill")},
         **{n: "schedule" for n in ("CosineDecay", "schedule_callbacks")},
         **{n: "seed" for n in ("SeedReport", "reproducible")}}
__all__ = [*_LAZY, "average_weights", "DEFAULT_LR_SCHEDULE", "DEFAULT_MIXUP", "DEFAULT_TEMPERATURE", "DEFAULT_WEIGHT",
           "LR_SCHEDULES", "MAX_BATCH_SIZE", "MAX_EPOCHS", "check_lr_schedule", "check_training_args"]


def __getattr__(name: str):
    """`training.train`, `training.distill`, ... are loaded on first use (they start TensorFlow)."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"tinyprune.training.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
