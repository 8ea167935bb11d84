"""Allocation candidates: the same budget met by differently shaped models, one chosen by measurement.

The greedy allocator (allocation.py) ranks groups by the score each loses when its channels
are removed *without retraining*. That ranking is what fine-tuning can least repair, but not
always what fine-tuning leaves best: measured on the MNIST CNN with 600 images at 25% flash, it
starved the dense layer (12 of 48 units) to keep every conv filter, and one uniform ratio scored
0.4 points higher after fine-tuning (docs/benchmarks.md). NetAdapt (Yang et al. 2018) settles
such choices by short-term fine-tuning of each proposal; this module does that for a family of
allocations between the two shapes:

    removed fraction of group g = c * (alpha * r_sensitivity[g] + (1 - alpha) * r_uniform)

`alpha` = 1 is the sensitivity allocation, 0 the one ratio for every group, and `c` is the
smallest scale (by bisection on the size predictor) whose prediction meets the limits. The
shapes can be crossed with several channel importances (each with its own sensitivity):
every (importance, shape) candidate is pruned, fine-tuned with the job's own epochs on at most
`PROBE_TRAIN_SAMPLES` training samples and measured on the validation data; the lowest
validation *loss* wins (ties: the earlier importance, then the larger alpha, i.e. the
sensitivity allocation), and its fine-tuned model is returned with it: the search's final
fine-tune continues from it. The score (accuracy) is recorded beside the loss but does not
rank: on 400 validation images it moves in steps of 0.25 points, and measured on the MNIST
CNN at 25% flash its rank correlation with the probes' test accuracy over the 9 candidates was
-0.26 to +0.36 (3 seeds) against +0.60 to +0.77 for the loss (docs/benchmarks.md, "Fifth run";
benchmarks/explore_candidates.py). A score before
fine-tuning does not rank them either: measured on MNIST with 600 images, Taylor importance
scored best before fine-tuning and worst after it.

This module proposes and scores candidates; it does not measure artifacts (the search's
rounds do that for the winner) and does not take part in compression (with `allow_compress`
the greedy joint allocator runs alone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from tinyprune.budget.allocation import Allocation, Limits, allocate, min_keep, predicted_drop
from tinyprune.budget.predictor import SizePredictor
from tinyprune.budget.sensitivity import Sensitivity
from tinyprune.errors import BudgetError
from tinyprune.load.data import Dataset
from tinyprune.prune.structured.dependency import DependencyGraph
from tinyprune.prune.structured.pruner import round_keep

ALPHAS = (1.0, 0.5, 0.0)  # sensitivity, half way, uniform: one fine-tune each per importance
PROBE_TRAIN_SAMPLES = 4096  # training samples a probe sees at most: bounds the cost on large datasets
_BISECTION_STEPS = 30  # on the scale c in [0, c_max]: far below one channel of resolution


@dataclass
class Candidate:
    """One allocation shape and what its short fine-tune scored."""

    alpha: float
    allocation: Allocation
    importance: str = "l1"
    score: float | None = None  # validation score after the probe fine-tune (reported)
    loss: float | None = None  # validation loss after the probe fine-tune (ranks the candidates)
    seconds: float = 0.0
    model: object | None = None  # the probe's fine-tuned model (the search continues the winner's)

    @property
    def shape(self) -> str:
        return {1.0: "sensitivity", 0.0: "uniform"}.get(self.alpha, f"blend {self.alpha:g}")

    @property
    def name(self) -> str:
        return f"{self.importance} {self.shape}"

    def to_dict(self) -> dict:
        return {"importance": self.importance, "shape": self.shape, "alpha": self.alpha,
                "keep": dict(self.allocation.keep),
                "predicted_flash_bytes": self.allocation.prediction.flash_bytes,
                "predicted_drop": round(self.allocation.predicted_drop, 6),
                "score_after_probe": None if self.score is None else round(self.score, 6),
                "loss_after_probe": None if self.loss is None else round(self.loss, 6),
                "seconds": round(self.seconds, 2)}


def _keep_at(graph: DependencyGraph, removed: dict[str, float], round_to: int) -> dict[str, int]:
    floor = min_keep(graph, round_to)  # round_keep clamps to it
    return {g.id: round_keep(g.channels * (1 - removed[g.id]), g.channels, round_to, floor[g.id])
            for g in graph.groups if g.prunable}


def blended(graph: DependencyGraph, predictor: SizePredictor, sens: Sensitivity, limits: Limits, round_to: int,
            alpha: float) -> Allocation:
    """The allocation of shape `alpha` (see the module docstring) that meets `limits` with the
    least removal. alpha = 1 is exactly `allocation.allocate`. Raises BudgetError when even the
    most-pruned model of this shape misses (the uniform shape reaches every group's floor last)."""
    if alpha >= 1.0:
        return allocate(graph, predictor, sens, limits, round_to)
    groups = [g for g in graph.groups if g.prunable]
    r_uni = _uniform_ratio(graph, predictor, limits, round_to)
    direction = {g.id: r_uni for g in groups}
    if alpha > 0.0:  # the greedy allocation is only needed for a blend
        greedy = allocate(graph, predictor, sens, limits, round_to)
        direction = {g.id: alpha * (1 - greedy.keep[g.id] / g.channels) + (1 - alpha) * r_uni for g in groups}
    c_max = 1 / max(max(direction.values()), 1e-9)

    def keep_at(c: float) -> dict[str, int]:
        return _keep_at(graph, {gid: min(1.0, c * d) for gid, d in direction.items()}, round_to)

    if limits.deficits(predictor.predict(keep_at(c_max))):
        raise BudgetError(f"the allocation of shape alpha={alpha:g} cannot meet the budget")
    lo, hi = 0.0, c_max
    for _ in range(_BISECTION_STEPS):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if not limits.deficits(predictor.predict(keep_at(mid))) else (mid, hi)
    keep = keep_at(hi)
    return Allocation(keep, predictor.predict(keep), predicted_drop(keep, sens, graph), 0)


def _uniform_ratio(graph: DependencyGraph, predictor: SizePredictor, limits: Limits, round_to: int) -> float:
    """The smallest single removed fraction for every group whose prediction meets `limits`."""
    groups = [g for g in graph.groups if g.prunable]
    lo, hi = 0.0, 1.0
    for _ in range(_BISECTION_STEPS):
        mid = (lo + hi) / 2
        keep = _keep_at(graph, {g.id: mid for g in groups}, round_to)
        lo, hi = (lo, mid) if not limits.deficits(predictor.predict(keep)) else (mid, hi)
    return hi


def probe_data(ds: Dataset) -> Dataset:
    """The training images a probe sees (the first PROBE_TRAIN_SAMPLES), the full validation set."""
    if len(ds.x_train) <= PROBE_TRAIN_SAMPLES:
        return ds
    return ds.subset(PROBE_TRAIN_SAMPLES, None)


def choose(graph: DependencyGraph, predictor: SizePredictor, sensitivities: dict[str, Sensitivity], limits: Limits,
           round_to: int, prune: Callable[[dict[str, int], str], object],
           probe: Callable[[object], tuple[float, float]],
           alphas: tuple[float, ...] = ALPHAS) -> tuple[Candidate, list[Candidate]]:
    """Measure every (importance, shape): `sensitivities` maps each importance to its measured
    sensitivity (in order of preference), `prune(keep, importance)` -> a pruned model,
    `probe(model)` -> (validation score, validation loss) after a fine-tune (in place). Returns
    (the one with the lowest loss, all of them); only the best keeps its fine-tuned `model`. A
    candidate whose importance and keep counts equal an earlier one's is measured once; shapes
    that cannot meet the limits are left out."""
    scored: list[Candidate] = []
    for importance, sens in sensitivities.items():
        for alpha in alphas:
            t = time.perf_counter()
            try:
                alloc = blended(graph, predictor, sens, limits, round_to, alpha)
            except BudgetError:
                continue
            twin = next((c for c in scored if c.importance == importance and c.allocation.keep == alloc.keep), None)
            cand = Candidate(alpha, alloc, importance)
            if twin is not None:
                cand.score, cand.loss, cand.model = twin.score, twin.loss, twin.model
            else:
                cand.model = prune(alloc.keep, importance)
                cand.score, cand.loss = probe(cand.model)
            cand.seconds = time.perf_counter() - t
            scored.append(cand)
    if not scored:
        raise BudgetError("no allocation candidate meets the budget")
    order = list(sensitivities)
    best = min(scored, key=lambda c: (c.loss, order.index(c.importance), -c.alpha))
    for c in scored:
        if c.model is not best.model:
            c.model = None  # one fine-tuned model is kept, not one per candidate
    return best, scored
