"""The unpruned model's facts that a budget job computes before any pruning, as plain values.

`search.original_facts` computes them; `search.prune_for_budget(precomputed=...)` takes them
instead of computing them again, which a sweep does once for all its points. This module only
holds the record: it imports no TensorFlow, so a sweep worker can unpickle it before it caps
TensorFlow's threads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class OriginalFacts:
    """The unpruned model's int8 conversion and its int8 TFLM accuracy on the validation data,
    as `prune_for_budget` computes them (the same for every budget, board and seed)."""

    tflite: bytes
    tflm_accuracy: float | None  # None without class labels (as the report has it)
    calibration: int
    seconds: float = 0.0
    keras3: bool = False  # the original came from Keras 3: the job also writes OUT/model_keras3.keras
