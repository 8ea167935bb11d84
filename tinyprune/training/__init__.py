"""Fine-tuning: compile, train and evaluate a tf_keras model on a `Dataset`.

Every pruning method that trains (magnitude schedules, structured fine-tuning, lottery
tickets, the budget search) goes through here. This package trains; it does not prune,
quantize or write files.

>>> from tinyprune import training
>>> result = training.train(model, ds, epochs=2)          # doctest: +SKIP
"""

from tinyprune.training.finetune import (DEFAULT_LR, RichProgress, TrainResult, compile_for, ends_in_softmax,
                                         evaluate, predict, score, train)
from tinyprune.training.limits import check_training_args

__all__ = ["DEFAULT_LR", "RichProgress", "TrainResult", "compile_for", "ends_in_softmax", "evaluate", "predict",
           "score", "train", "check_training_args"]
