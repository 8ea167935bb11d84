"""Choose per-group channel counts that meet resource limits with the least predicted loss.

Greedy on sensitivity per unit of resource saved: starting from the full model, every
step removes a slice of channels (1/16 of the group, rounded to `round_to`) from the group
whose step costs the least predicted score drop per unit of the still-unmet limits it frees,
until every limit is met. The predicted drop of an allocation is the sum of the groups'
sensitivities at their ratios (an additive model: groups are pruned together later, and
the budget search measures the real result after fine-tuning).

Limits are on the predictor's quantities: flash bytes (the int8 .tflite), 32-bit arena bytes, and MACs (the
latency model is linear in MACs per op kind, so a latency limit becomes a MACs limit).
This module allocates; it does not measure, prune or train.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyprune.errors import BudgetError
from tinyprune.budget.predictor import Prediction, SizePredictor
from tinyprune.budget.sensitivity import Sensitivity
from tinyprune.prune.structured.dependency import DependencyGraph
from tinyprune.prune.structured.pruner import round_keep

STEPS_PER_GROUP = 16  # granularity: a group shrinks by about 1/16 of its channels per step
_RESOURCES = ("flash_bytes", "arena_bytes", "macs")


@dataclass
class Limits:
    """Upper bounds on predicted quantities; None = unconstrained."""

    flash_bytes: float | None = None  # the budget's flash_bytes, as the predictor sees it
    arena_bytes: float | None = None
    macs: float | None = None

    def scaled(self, factors: dict[str, float]) -> "Limits":
        return Limits(**{r: (None if getattr(self, r) is None else getattr(self, r) * factors.get(r, 1.0))
                         for r in _RESOURCES})

    def deficits(self, p: Prediction) -> dict[str, float]:
        """How far `p` is over each limit (only the violated ones)."""
        out = {}
        for r in _RESOURCES:
            limit = getattr(self, r)
            if limit is not None and getattr(p, r) > limit:
                out[r] = getattr(p, r) - limit
        return out


@dataclass
class Allocation:
    keep: dict[str, int]  # group id -> channels kept
    prediction: Prediction
    predicted_drop: float
    steps: int


def min_keep(graph: DependencyGraph, round_to: int) -> dict[str, int]:
    """The smallest allowed channel count of every prunable group."""
    return {g.id: round_keep(g.min_keep, g.channels, round_to, g.min_keep) for g in graph.groups if g.prunable}


def _step(channels: int, round_to: int) -> int:
    return max(round_to, round_to * round(channels / (STEPS_PER_GROUP * round_to)))


def predicted_drop(keep: dict[str, int], sens: Sensitivity, graph: DependencyGraph) -> float:
    return sum(sens.drop(g.id, 1 - keep[g.id] / g.channels) for g in graph.groups if g.id in keep)


def smallest(graph: DependencyGraph, predictor: SizePredictor, round_to: int) -> Prediction:
    """What the predictor says the most-pruned allowed model needs."""
    return predictor.predict(min_keep(graph, round_to))


def allocate(graph: DependencyGraph, predictor: SizePredictor, sens: Sensitivity, limits: Limits,
             round_to: int = 1) -> Allocation:
    """Greedy allocation (see the module docstring). Raises BudgetError if no allocation fits."""
    floor = min_keep(graph, round_to)
    keep = {g.id: g.channels for g in graph.groups if g.prunable}
    channels = {g.id: g.channels for g in graph.groups}
    pred = predictor.predict(keep)
    steps = 0
    while True:
        deficits = limits.deficits(pred)
        if not deficits:
            return Allocation(keep, pred, predicted_drop(keep, sens, graph), steps)
        best = None
        for gid, k in keep.items():
            if k <= floor[gid]:
                continue
            new_k = max(floor[gid], k - _step(channels[gid], round_to))
            trial = dict(keep, **{gid: new_k})
            p = predictor.predict(trial)
            gain = sum(min(getattr(pred, r) - getattr(p, r), d) / d for r, d in deficits.items())
            if gain <= 0:
                continue
            cost = sens.drop(gid, 1 - new_k / channels[gid]) - sens.drop(gid, 1 - k / channels[gid])
            rank = (max(cost, 0.0) + 1e-6) / gain  # a free step still prefers the biggest saving
            if best is None or rank < best[0]:
                best = (rank, gid, new_k, p)
        if best is None:
            small = smallest(graph, predictor, round_to)
            raise BudgetError(
                "no allocation meets the budget: the smallest model channel removal can reach is "
                f"{small.flash_bytes / 1024:.1f} KB int8 with a {small.arena_bytes / 1024:.1f} KB arena"
            )
        _, gid, new_k, pred = best
        keep[gid] = new_k
        steps += 1
