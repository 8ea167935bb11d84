"""Structured filter removal for tf_keras models: physically smaller networks.

Three parts, as in Torch-Pruning/DepGraph:
- `dependency`: the channel dependency graph (`build_graph`): which channels of which layers
  must be removed together (`Group`s), across Add/Concatenate/depthwise/Flatten/SE blocks;
- `importance`: per-channel scores for each group (l1, l2, bn, taylor, random, per-weight
  scores from `tinyprune.prune.at_init.scores`), pluggable via `register_importance`;
- `pruner`: `prune_structured` picks the channels to keep and rebuilds a new, smaller model
  with the surviving weights (`StructuredResult`).

This package imports TensorFlow lazily (through tinyprune.tfsetup) only where needed.
"""

from tinyprune.prune.structured.dependency import DependencyGraph, Group, ParamSlice, build_graph
from tinyprune.prune.structured.importance import IMPORTANCES, Importance, ScoreImportance, get_importance, register_importance
from tinyprune.prune.structured.pruner import LayerRow, StructuredResult, masked_equivalent, prune_structured

__all__ = [
    "DependencyGraph", "Group", "ParamSlice", "build_graph",
    "IMPORTANCES", "Importance", "ScoreImportance", "get_importance", "register_importance",
    "LayerRow", "StructuredResult", "masked_equivalent", "prune_structured",
]
