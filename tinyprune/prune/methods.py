"""The pruning methods tinyprune offers: one table, read by the CLI, `run` configs and reports.

Each entry says what kind of method it is, which saliency score it uses (pruning at init),
whether it needs data, its default number of rounds, and a one-line summary. This module
imports nothing heavy (the CLI reads it before TensorFlow starts); it does not prune.
"""

from __future__ import annotations

from dataclasses import dataclass

SYNFLOW_ROUNDS = 100  # Tanaka et al. 2020: SynFlow's iterative schedule
IMP_ROUNDS = 5  # prune-rewind rounds of iterative magnitude pruning (lottery tickets)
SCORES_NEEDING_DATA = frozenset({"snip", "grasp"})  # gradient-based saliency scores read a training batch


@dataclass(frozen=True)
class Method:
    name: str  # the CLI subcommand and the `[prune] method` of a run config
    kind: str  # "magnitude", "structured", "at_init", "imp" or "budget"
    summary: str
    score: str | None = None  # the saliency score of a pruning-at-init method (tinyprune.prune.at_init.scores)
    default_rounds: int = 1

    @property
    def needs_data(self) -> bool:
        """True if the method cannot run without --data."""
        return self.kind in ("magnitude", "imp", "budget") or self.score in SCORES_NEEDING_DATA


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("magnitude", "magnitude", "tfmot magnitude schedule while fine-tuning (+ PRUNE/LUT compression)"),
    Method("structured", "structured", "remove filters: a physically smaller network"),
    Method("budget", "budget", "remove filters until flash / RAM / latency budgets are met"),
    Method("synflow", "at_init", "pruning at init by synaptic flow (no data)", "synflow", SYNFLOW_ROUNDS),
    Method("snip", "at_init", "pruning at init by connection sensitivity (needs data)", "snip"),
    Method("grasp", "at_init", "pruning at init preserving gradient flow (needs data)", "grasp"),
    Method("magnitude-init", "at_init", "pruning at init by weight magnitude", "magnitude"),
    Method("random-init", "at_init", "pruning at init at random (a baseline)", "random"),
    Method("imp", "imp", "iterative magnitude pruning with rewinding (lottery tickets)", None, IMP_ROUNDS),
)}


