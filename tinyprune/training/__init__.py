"""Fine-tuning: compile, train and evaluate a tf_keras model on a `Dataset`; distil from a
teacher; seed a run.

Every pruning method that trains (magnitude schedules, structured fine-tuning, lottery
tickets, the budget search) goes through here. This package trains; it does not prune,
quantize or write files.

>>> from tinyprune import training
>>> result = training.train(model, ds, epochs=2)          # doctest: +SKIP
>>> result = training.distill(student, teacher, ds, epochs=4)   # doctest: +SKIP
"""

from tinyprune.training.distill import (DEFAULT_TEMPERATURE, DEFAULT_WEIGHT, DistillConfig, DistillResult,
                                        distill)
from tinyprune.training.finetune import (DEFAULT_LR, RichProgress, TrainResult, compile_for, ends_in_softmax,
                                         evaluate, predict, score, train)
from tinyprune.training.seed import SeedReport, reproducible

__all__ = ["DEFAULT_LR", "DEFAULT_TEMPERATURE", "DEFAULT_WEIGHT", "DistillConfig", "DistillResult", "RichProgress",
           "SeedReport", "TrainResult", "compile_for", "distill", "ends_in_softmax", "evaluate", "predict",
           "reproducible", "score", "train"]
