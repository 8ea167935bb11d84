"""Fine-tuning: compile, train and evaluate a tf_keras model on a `Dataset`.

Every pruning method that trains (magnitude schedules, structured fine-tuning, lottery
tickets, the budget search) goes through here. This package trains; it does not prune,
quantize or write files. `limits` (ranges of epochs and batch size) imports no TensorFlow;
the training functions are loaded on first use, so checking options never starts it.

>>> from tinyprune import training
>>> result = training.train(model, ds, epochs=2)          # doctest: +SKIP
"""

from __future__ import annotations

import importlib

from tinyprune.training.limits import MAX_BATCH_SIZE, MAX_EPOCHS, check_training_args

_FINETUNE = ("DEFAULT_LR", "RichProgress", "TrainResult", "compile_for", "ends_in_softmax", "evaluate", "predict",
             "score", "train")
__all__ = [*_FINETUNE, "MAX_BATCH_SIZE", "MAX_EPOCHS", "check_training_args"]


def __getattr__(name: str):
    """`training.train` and friends come from `finetune`, which starts TensorFlow: load it on first use."""
    if name in _FINETUNE:
        return getattr(importlib.import_module("tinyprune.training.finetune"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
