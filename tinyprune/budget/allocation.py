"""Choose per-group channel counts that meet resource limits with the least predicted loss.

Greedy on sensitivity per unit of resource saved: starting from the full model, every
step removes a slice of channels (1/16 of the group, rounded to `round_to`) from the group
whose step costs the least predicted score drop per unit of the still-unmet limits it frees,
until every limit is met (when no single step lowers an unmet quantity, e.g. an arena peak two
groups share, every group above its floor gives one slice); then channel slices whose return
lowers the predicted drop are
put back while every limit stays met (the last step may have overshot). The predicted drop
of an allocation is the sum of the groups' sensitivities at their ratios (an additive model: groups are pruned together later, and
the budget search measures the real result after fine-tuning).

Limits are on the predictor's quantities: flash bytes (the int8 .tflite), 32-bit arena bytes, and MACs (the
latency model is linear in MACs per op kind, so a latency limit becomes a MACs limit).
This module allocates; it does not measure, prune or train.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    compress: dict = field(default_factory=dict)  # layer -> joint.Move chosen (allow_compress only)


def min_keep(graph: DependencyGraph, round_to: int) -> dict[str, int]:
    """The smallest allowed channel count of every prunable group."""
    return {g.id: round_keep(g.min_keep, g.channels, round_to, g.min_keep) for g in graph.groups if g.prunable}


def _step(channels: int, round_to: int) -> int:
    return max(round_to, round_to * round(channels / (STEPS_PER_GROUP * round_to)))


def predicted_drop(keep: dict[str, int], sens: Sensitivity, graph: DependencyGraph, chosen: dict | None = None) -> float:
    return sum(sens.drop(g.id, 1 - keep[g.id] / g.channels) for g in graph.groups if g.id in keep) + \
        sum(max(0.0, m.drop) for m in (chosen or {}).values())


def _predict(predictor: SizePredictor, keep: dict[str, int], joint, chosen: dict) -> Prediction:
    p = predictor.predict(keep)
    if not chosen:
        return p
    saved, added = joint.adjust(predictor, predictor.fractions(keep), chosen)
    return Prediction(int(round(p.flash_bytes - saved)), int(round(p.arena_bytes + added)), p.macs)


def smallest(graph: DependencyGraph, predictor: SizePredictor, round_to: int, joint=None) -> Prediction:
    """What the predictor says the most-pruned allowed model needs (with `joint`: every layer
    also compressed by its move that saves the most flash)."""
    keep = min_keep(graph, round_to)
    if joint is None:
        return predictor.predict(keep)
    frac = predictor.fractions(keep)
    best = {}
    for m in joint.moves:
        w = predictor._weights[joint.weight_index[m.layer]]
        gain = m.saving(w.kept_elements(frac), w.kept_channels(frac))
        if gain > 0 and (m.layer not in best or gain > best[m.layer][0]):
            best[m.layer] = (gain, m)
    return _predict(predictor, keep, joint, {k: v[1] for k, v in best.items()})


def _give_back(graph, predictor, sens, limits, round_to, joint, keep, chosen, pred):
    """Spend the slack a last big step left: put back, one slice at a time, the channels whose
    return lowers the predicted drop the most, while every limit stays met."""
    channels = {g.id: g.channels for g in graph.groups}
    back = 0
    while True:
        best = None
        for gid, k in keep.items():
            if k >= channels[gid]:
                continue
            new_k = min(channels[gid], k + _step(channels[gid], round_to))
            benefit = sens.drop(gid, 1 - k / channels[gid]) - sens.drop(gid, 1 - new_k / channels[gid])
            if benefit <= 0:
                continue
            trial = dict(keep, **{gid: new_k})
            p = _predict(predictor, trial, joint, chosen)
            if limits.deficits(p):
                continue
            if best is None or benefit > best[0]:
                best = (benefit, trial, p)
        if best is None:
            return keep, pred, back
        _, keep, pred = best
        back += 1


def allocate(graph: DependencyGraph, predictor: SizePredictor, sens: Sensitivity, limits: Limits,
             round_to: int = 1, joint=None) -> Allocation:
    """Greedy allocation (see the module docstring). With `joint` (budget/joint.py) a step may
    also compress one layer's kernel (PRUNE or LUT) instead of removing channels, and never one
    that makes a met limit fail. Raises BudgetError if no allocation fits."""
    floor = min_keep(graph, round_to)
    keep = {g.id: g.channels for g in graph.groups if g.prunable}
    channels = {g.id: g.channels for g in graph.groups}
    chosen: dict = {}
    pred = predictor.predict(keep)
    steps = 0
    while True:
        deficits = limits.deficits(pred)
        if not deficits:
            keep, pred, back = _give_back(graph, predictor, sens, limits, round_to, joint, keep, chosen, pred)
            return Allocation(keep, pred, predicted_drop(keep, sens, graph, chosen), steps + back, dict(chosen))
        best = None

        def consider(cost, trial_keep, trial_chosen, what):
            nonlocal best
            p = _predict(predictor, trial_keep, joint, trial_chosen)
            if set(limits.deficits(p)) - set(deficits):
                return  # breaks a limit that was met (e.g. DECODE's arena against the RAM budget)
            gain = sum(min(getattr(pred, r) - getattr(p, r), d) / d for r, d in deficits.items())
            if gain <= 0:
                return
            rank = (max(cost, 0.0) + 1e-6) / gain  # a free step still prefers the biggest saving
            if best is None or rank < best[0]:
                best = (rank, trial_keep, trial_chosen, p, what)

        for gid, k in keep.items():
            if k <= floor[gid]:
                continue
            new_k = max(floor[gid], k - _step(channels[gid], round_to))
            cost = sens.drop(gid, 1 - new_k / channels[gid]) - sens.drop(gid, 1 - k / channels[gid])
            consider(cost, dict(keep, **{gid: new_k}), chosen, None)
        for m in (joint.moves if joint is not None else ()):
            old = chosen.get(m.layer)
            if old == m:
                continue
            consider(m.drop - (old.drop if old else 0.0), keep, dict(chosen, **{m.layer: m}), m)
        if best is None:  # no single step lowers a missed quantity (e.g. a peak two groups share)
            shrink = {gid: max(floor[gid], k - _step(channels[gid], round_to)) for gid, k in keep.items()}
            if shrink != keep:  # one step on every group above its floor, then look again
                keep, pred = shrink, _predict(predictor, shrink, joint, chosen)
                steps += 1
                continue
            small = smallest(graph, predictor, round_to, joint)
            raise BudgetError(
                "no allocation meets the budget: the smallest model channel removal"
                + (" and compression" if joint is not None else "") + " can reach is "
                f"{small.flash_bytes / 1024:.1f} KB int8 with a {small.arena_bytes / 1024:.1f} KB arena"
            )
        _, keep, chosen, pred, _ = best
        steps += 1
