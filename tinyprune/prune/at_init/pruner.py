"""Pruning at initialization: score, mask globally to a compression rho, optionally iterate.

`prune_at_init(model, method, compression, rounds)` prunes the model's CURRENT weights, which
are taken as the initialization (the network is not re-initialized: to prune a fresh network,
pass a freshly built or untrained model). Each round scores the still-masked model with a
score from `scores.SCORES`, then masks globally to the round's compression on the
exponential schedule of Tanaka et al. 2020 (the kept fraction after round k of n is
rho^(-k/n), so compression grows geometrically and round n reaches rho exactly). One round is
single-shot pruning. SynFlow defaults to 100 rounds (the paper's setting), other methods to 1.
After every round the layer-collapse guard runs (`masks.check_collapse`).

Methods: synflow (data-free), snip, grasp (need a batch of data), magnitude, random.
The model is modified in place (pruned weights set to zero) and returned with its masks;
training the pruned network afterwards (with `masks.MaskCallback`) is the caller's job.
This module does not train or write files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tinyprune.prune.at_init import masks as masklib
from tinyprune.errors import ConfigError, DataError
from tinyprune.prune.at_init.scores import SCORES, needs_data
from tinyprune.prune.methods import SYNFLOW_ROUNDS

SCORING_PER_CLASS = 10  # GraSP's reference code samples a class-balanced batch (samples per class)
SCORING_BATCH = 100  # batch size when labels are not classes (SNIP uses one mini-batch of 100)
BATCH_SEED = 0


@dataclass
class RoundRecord:
    round: int
    compression: float
    kept_fraction: float


@dataclass
class InitPruneResult:
    """A model pruned at initialization, its masks and how it got there."""

    model: object
    masks: masklib.Masks
    method: str
    compression: float
    rounds: int
    history: list[RoundRecord] = field(default_factory=list)
    collapsed: list[str] = field(default_factory=list)  # layers emptied (only with allow_collapse)

    @property
    def kept_fraction(self) -> float:
        return masklib.kept_fraction(self.masks)


def default_rounds(method: str) -> int:
    """100 rounds for SynFlow (the paper's schedule), 1 (single-shot) for every other score."""
    return SYNFLOW_ROUNDS if method == "synflow" else 1


def exponential_schedule(compression: float, rounds: int) -> list[float]:
    """Compression after each round: rho^(k/n), k = 1..n (kept fraction rho^(-k/n))."""
    masklib.validate_compression(compression)
    validate_rounds(rounds)
    return [float(compression ** (k / rounds)) for k in range(1, rounds + 1)]


def validate_rounds(rounds: int) -> None:
    if rounds is None or int(rounds) != rounds or rounds < 1:
        raise ConfigError(f"rounds must be a whole number >= 1, got {rounds}")


def scoring_batch(x: np.ndarray, y: np.ndarray, per_class: int = SCORING_PER_CLASS,
                  seed: int = BATCH_SEED) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic batch for data-dependent scores: class-balanced when y holds classes."""
    rng = np.random.default_rng(seed)
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)])
    else:
        idx = rng.permutation(len(x))[:SCORING_BATCH]
    idx = np.sort(idx)
    return x[idx], y[idx]


def prune_at_init(model, method: str, compression: float, rounds: int | None = None,
                  x: np.ndarray | None = None, y: np.ndarray | None = None,
                  allow_collapse: bool = False, quiet: bool = True) -> InitPruneResult:
    """Prune `model` in place to `compression` with score `method`; see the module docstring.

    `x`, `y`: the scoring batch for methods that need data (use `scoring_batch` to draw one).
    """
    if method not in SCORES:
        raise ConfigError(f"unknown score {method!r}; use one of {', '.join(sorted(SCORES))}")
    from tinyprune.load.keras3 import as_tf_keras

    model = as_tf_keras(model, x)  # a Keras 3 model: its tf_keras translation is pruned (result.model)
    rounds = default_rounds(method) if rounds is None else rounds
    schedule = exponential_schedule(compression, rounds)
    if needs_data(method) and (x is None or y is None):
        raise DataError(f"{method} scores weights with a batch of training data; give --data")
    score_fn = SCORES[method]
    masks = masklib.full_masks(model)
    history, collapsed = [], []
    progress = Progress(TextColumn(f"[bold]{method} pruning"), BarColumn(),
                        TextColumn("round {task.completed}/{task.total}"), TextColumn("{task.fields[info]}"),
                        TimeElapsedColumn(), console=Console(stderr=True), transient=True, disable=quiet)
    with progress:
        task = progress.add_task(method, total=rounds, info="")
        for k, rho_k in enumerate(schedule, start=1):
            masklib.apply_masks(model, masks)
            scores = score_fn(model, x, y)
            masks = masklib.global_masks(scores, rho_k, previous=masks)
            masklib.apply_masks(model, masks)
            collapsed = masklib.check_collapse(masks, rho_k, allow_collapse)
            history.append(RoundRecord(k, rho_k, masklib.kept_fraction(masks)))
            progress.update(task, advance=1, info=f"compression {rho_k:.3g}, kept {history[-1].kept_fraction:.4f}")
    return InitPruneResult(model, masks, method, float(compression), rounds, history, collapsed)
