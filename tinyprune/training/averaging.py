"""Weight averaging: the mean of two fine-tunes of one network that share a start.

Two models fine-tuned from the same weights often lie in one basin of the loss, where the
mean of their weights can score better than either (Wortsman et al. 2022, "Robust fine-tuning
of zero-shot models" (WiSE-FT) and "Model soups"); not always, so the caller measures it. The budget search uses it for
its final model: the winning allocation candidate's probe (trained on the labels) and the
distilled fine-tune continued from that probe. Measured on the MNIST CNN at 25% of its int8
flash with 600 labelled images (docs/benchmarks.md, "Fifth run"): 98.50% (probe) and 98.43%
(continued), 98.80% averaged, float, 3 seeds.

Every weight is averaged, BatchNorm's moving mean and variance included (the approximation
WiSE-FT makes; no statistics are re-estimated). Pure NumPy: this module does not train,
evaluate or decide whether the average is kept (the caller measures that).

>>> averaged = average_weights(probe.get_weights(), tuned.get_weights())   # doctest: +SKIP
>>> tuned.set_weights(averaged)                                             # doctest: +SKIP
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tinyprune.errors import ConfigError


def average_weights(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The element-wise mean of two weight lists of one architecture (`model.get_weights()`
    order), each array in its own dtype. Raises ConfigError when the lists do not match in
    length, shapes or dtypes, or hold a non-floating array (a counter is not averaged)."""
    if len(a) != len(b):
        raise ConfigError(f"cannot average weights of different models ({len(a)} vs {len(b)} arrays)")
    out = []
    for i, (x, y) in enumerate(zip(a, b)):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape or x.dtype != y.dtype:
            raise ConfigError(f"cannot average weight {i}: {x.shape} {x.dtype} vs {y.shape} {y.dtype}")
        if not np.issubdtype(x.dtype, np.floating):
            raise ConfigError(f"cannot average weight {i}: {x.dtype} is not a floating-point type")
        out.append(((x.astype(np.float64) + y.astype(np.float64)) / 2).astype(x.dtype))
    return out
