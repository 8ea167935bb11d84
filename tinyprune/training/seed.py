"""Reproducible runs: fix every source of randomness a tinyprune job controls.

`reproducible(seed)` seeds Python's `random`, NumPy's global generator and TensorFlow's
global seed (which drives weight initialisation, dropout and the order `fit` shuffles the
training data in) through `keras.utils.set_random_seed`, and turns on TensorFlow's op
determinism (`tf.config.experimental.enable_op_determinism`: deterministic kernels and
a single inter-op order where TF has them) for the duration of the job, restoring the previous
setting after. Fixed seeds elsewhere (the data split, the calibration samples, random
importance) are constants of their modules and do not depend on it.

What it cannot fix: results differ between machines or TensorFlow/oneDNN builds (float
summation order in vectorised kernels), and the TFLite converter's output is deterministic
only given identical weights. This module seeds; it does not train.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator


@dataclass
class SeedReport:
    """What `reproducible` fixed (for report.json)."""

    seed: int | None
    python_numpy_tf_seeded: bool
    op_determinism: bool
    note: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


NOT_FIXED = ("bit-identical only on the same machine, TensorFlow build and thread settings; "
             "float summation order differs across CPUs and oneDNN builds")


@contextlib.contextmanager
def reproducible(seed: int | None) -> Iterator[SeedReport]:
    """Seed everything the job controls (see the module docstring); `None` does nothing."""
    if seed is None:
        yield SeedReport(None, False, False, "no --seed: runs are not reproducible (random shuffles and inits)")
        return
    from tensorflow.python.framework import config as tf_config

    from tinyprune.tfsetup import keras

    was = tf_config.is_op_determinism_enabled()
    keras.utils.set_random_seed(int(seed))
    tf_config.enable_op_determinism()
    try:
        yield SeedReport(int(seed), True, True, NOT_FIXED)
    finally:
        if not was:
            tf_config.disable_op_determinism()
