"""Structured filter removal: choose channels per group and rebuild a smaller tf_keras model.

`prune_structured` scores every group's channels (importance.py), decides how many each
group keeps (one global ratio, per-layer ratios, or explicit per-group keep counts; ranked
per group or globally across groups; rounded to multiples of `round_to`; never fewer than
one channel, nor fewer than the group's fixed channels), keeps the best ones, and builds a
NEW model from the original's config with smaller `filters`/`units` (and Reshape targets),
copying the surviving weights. With `steps` > 1 it does this in equal steps, re-scoring the
shrunken model each time. Input and output shapes never change.

`masked_equivalent` builds the original-sized model with the removed channels' weights
zeroed (producer output slices and consumer input slices): its outputs equal the pruned
model's, which is how the tests check every rebuild.

This module prunes; it does not analyse dependencies (dependency.py), score channels
(importance.py), fine-tune or convert.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from tinyprune.errors import ConfigError, UnsupportedLayerError
from tinyprune.prune import check_reduction, check_round_to
from tinyprune.prune.structured.dependency import DependencyGraph, Group, build_graph
from tinyprune.prune.structured.importance import Importance, get_importance, has_batchnorm

if TYPE_CHECKING:
    from tinyprune.load.data import Dataset

EPS = 1e-12  # guards the per-group normalisation of scores for global ranking


@dataclass
class LayerRow:
    """Before/after facts for one layer with weights."""

    layer: str
    type: str
    channels_before: int | None
    channels_after: int | None
    params_before: int
    params_after: int


@dataclass
class StructuredResult:
    """The pruned model and what was removed.

    model: the new, smaller tf_keras model (same input and output shapes).
    kept: layer name -> indices (into the ORIGINAL layer's output channels) that survive,
        for every layer with weights and channel outputs.
    group_kept: group id -> surviving channel indices of that group in the original graph.
    rows: per-layer before/after (channels, parameters).
    graph: the dependency graph of the original model.
    notes: boundaries and fall-backs the user should know about.
    """

    model: object
    kept: dict[str, list[int]]
    rows: list[LayerRow]
    group_kept: dict[str, list[int]]
    graph: DependencyGraph = field(repr=False)
    notes: list[str] = field(default_factory=list)
    importance: str = "l1"

    @property
    def params_before(self) -> int:
        return sum(r.params_before for r in self.rows)

    @property
    def params_after(self) -> int:
        return sum(r.params_after for r in self.rows)

    def to_dict(self) -> dict:
        return {
            "importance": self.importance,
            "params_before": self.params_before,
            "params_after": self.params_after,
            "layers": [vars(r) for r in self.rows],
            "groups": [{"id": g.id, "channels_before": g.channels,
                        "channels_after": len(self.group_kept.get(g.id, range(g.channels))),
                        "prunable": g.prunable, "producers": g.producers} for g in self.graph.groups],
            "kept": self.kept,
            "notes": self.notes,
        }


# ------------------------------------------------------------------------------------ checks


def _check_ratio(r, what: str) -> None:
    if not isinstance(r, (int, float)) or not 0.0 <= float(r) < 1.0:
        raise ConfigError(f"{what} must be in [0, 1) (the fraction of channels to remove), got {r}")


def _unknown_layer(name: str, names: list[str], option: str) -> ConfigError:
    near = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {', '.join(near)}?" if near else f"; layers are: {', '.join(names[:12])}" + (
        " ..." if len(names) > 12 else "")
    return ConfigError(f"{option}: no layer named '{name}' in the model{hint}")


def _validate(model, ratio, layer_ratios, group_keep, reduction, ignore, round_to, steps) -> None:
    if ratio is not None:
        _check_ratio(ratio, "ratio")
    for name, r in (layer_ratios or {}).items():
        _check_ratio(r, f"layer ratio for '{name}'")
    check_reduction(reduction)
    check_round_to(round_to)
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a whole number >= 1, got {steps}")
    names = [ly.name for ly in model.layers]
    for name in ignore:
        if name not in names:
            raise _unknown_layer(name, names, "--ignore")
    for name in layer_ratios or {}:
        if name not in names:
            raise _unknown_layer(name, names, "--layer-ratio")
    if ratio is None and not layer_ratios and not group_keep:
        raise ConfigError("nothing to prune: give a ratio, per-layer ratios or per-group keep counts")


# ------------------------------------------------------------------------------ keep counts


def round_keep(exact: float, channels: int, round_to: int, min_keep: int) -> int:
    """`exact` rounded to the nearest multiple of `round_to`, within [min_keep, channels]."""
    k = round_to * int(np.floor(exact / round_to + 0.5))
    k = max(k, round_to)
    return int(min(channels, max(k, min_keep)))


def _ratio_keep(g: Group, ratio: float, round_to: int) -> int:
    """Keep count for removing `ratio` of a group's removable (non-fixed) channels."""
    free = g.channels - g.fixed_channels
    return round_keep(g.fixed_channels + free * (1 - ratio), g.channels, round_to, g.min_keep)


def _group_for_layer(graph: DependencyGraph, name: str) -> Group:
    groups = graph.groups_of_layer(name)
    if not groups:
        raise UnsupportedLayerError(f"layer '{name}' has no output channels tinyprune can prune")
    g = groups[0]
    if not g.prunable:
        why = g.reasons[0] if g.reasons else "its channels are the model's input or output, or ignored"
        raise UnsupportedLayerError(f"layer '{name}' cannot be pruned: its channels must be kept ({why})")
    return g


def final_targets(graph: DependencyGraph, ratio: float | None, layer_ratios: dict[str, float],
                  group_keep: dict[str, int], round_to: int, global_ranking: bool) -> dict[str, int]:
    """Final keep count per group whose count is decided per group (not by global ranking)."""
    targets: dict[str, int] = {}
    by_layer: dict[str, tuple[str, float]] = {}
    for name, r in layer_ratios.items():
        g = _group_for_layer(graph, name)
        if g.id in by_layer and by_layer[g.id][1] != r:
            raise ConfigError(f"layers '{by_layer[g.id][0]}' and '{name}' share channels (group {g.id}) "
                              f"but were given different ratios {by_layer[g.id][1]} and {r}")
        by_layer[g.id] = (name, r)
        targets[g.id] = _ratio_keep(g, r, round_to)
    ids = [g.id for g in graph.groups]
    for gid, k in group_keep.items():
        if gid not in ids:
            near = difflib.get_close_matches(gid, ids, n=3)
            raise ConfigError(f"group_keep: no group '{gid}'" + (f"; did you mean {', '.join(near)}?" if near else ""))
        g = graph.group(gid)
        if not isinstance(k, (int, np.integer)) or not g.min_keep <= k <= g.channels:
            raise ConfigError(f"group_keep['{gid}'] = {k} is outside [{g.min_keep}, {g.channels}]")
        targets[gid] = int(k)
    if ratio is not None and not global_ranking:
        for g in graph.groups:
            if g.prunable and g.id not in targets:
                targets[g.id] = _ratio_keep(g, ratio, round_to)
    return targets


def top_channels(scores: np.ndarray, fixed: np.ndarray, k: int) -> np.ndarray:
    """Indices kept: every fixed channel plus the best-scoring others, k in all, sorted."""
    free = np.flatnonzero(~fixed)
    n_free = max(0, k - int(fixed.sum()))
    best = free[np.argsort(-scores[free], kind="stable")[:n_free]]
    return np.sort(np.concatenate([np.flatnonzero(fixed), best]))


def _global_counts(graph: DependencyGraph, scores: list[np.ndarray], candidates: list[int],
                   keep_total: int, round_to: int) -> dict[str, int]:
    """Keep counts for `candidates` (group indices) from one ranking of normalised scores."""
    norm, entries = {}, []
    for gi in candidates:
        g = graph.groups[gi]
        free = ~g.fixed
        norm[gi] = scores[gi] / (np.abs(scores[gi][free]).mean() + EPS)
        entries += [(norm[gi][c], gi, c) for c in np.flatnonzero(free)]
    keep = {gi: graph.groups[gi].channels for gi in candidates}
    n_remove = sum(int((~graph.groups[gi].fixed).sum()) for gi in candidates) - keep_total
    for _, gi, _c in sorted(entries, key=lambda e: e[0]):
        if n_remove <= 0:
            break
        if keep[gi] > graph.groups[gi].min_keep:
            keep[gi] -= 1
            n_remove -= 1
    return {graph.groups[gi].id: round_keep(keep[gi], graph.groups[gi].channels, round_to, graph.groups[gi].min_keep)
            for gi in candidates}


def _ensure_nonempty(graph: DependencyGraph, scores: list[np.ndarray], kept: dict[str, np.ndarray]) -> None:
    """Every tensor keeps at least one channel (e.g. one side of a Concatenate)."""
    for _ in range(len(graph.nodes)):
        keep = graph.element_keep(kept)
        changed = False
        for node in graph.nodes:
            ids = node.out_ids
            if ids is None or not len(ids) or keep[ids].any():
                continue
            gi, ch = graph.locate(ids)
            g0 = next(int(x) for x in gi if x >= 0 and graph.groups[x].id in kept)
            chans = ch[gi == g0]
            best = chans[np.argmax(scores[g0][chans])]
            kept[graph.groups[g0].id] = np.union1d(kept[graph.groups[g0].id], [best])
            changed = True
        if not changed:
            return


# ---------------------------------------------------------------------------------- rebuild


def _config_entries(cfg: dict, sequential: bool) -> dict[str, dict]:
    return {(e["config"]["name"] if sequential else e["name"]): e for e in cfg["layers"]}


def rebuild(model, graph: DependencyGraph, group_kept: dict[str, np.ndarray]) -> tuple[object, dict[str, np.ndarray]]:
    """A new model with only the kept channels, and per layer the kept output positions."""
    from tinyprune.tfsetup import keras

    keep = graph.element_keep(group_kept)
    sequential = isinstance(model, keras.Sequential)
    cfg = copy.deepcopy(model.get_config())
    entries = _config_entries(cfg, sequential)
    positions: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        if node.out_ids is None or "#" in node.name or node.name not in entries:
            continue
        mask = keep[node.out_ids]
        positions[node.name] = np.flatnonzero(mask)
        if mask.all():
            continue
        conf = entries[node.name]["config"]
        entries[node.name].pop("build_config", None)
        if node.kind == "producer":
            conf["units" if node.class_name == "Dense" else "filters"] = int(mask.sum())
        elif node.class_name == "Reshape":
            conf["target_shape"] = [*list(conf["target_shape"])[:-1], int(mask.sum())]
        elif node.class_name == "LayerScale":
            conf["projection_dim"] = int(mask.sum())
    for e in cfg["layers"]:
        e.pop("build_config", None)
    # the classes of the loaded model itself (e.g. tf_keras.applications' LayerScale, which
    # tf_keras does not register by name): already trusted, since the model is loaded
    classes = {type(ly).__name__: type(ly) for ly in model.layers}
    new = (keras.Sequential if sequential else keras.Model).from_config(cfg, custom_objects=classes)
    by_layer: dict[str, list] = {}
    for sl in graph.slices:
        by_layer.setdefault(sl.layer, []).append(sl)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        for sl in by_layer.get(layer.name, []):
            weights[sl.weight_index] = np.compress(keep[sl.ids], weights[sl.weight_index], axis=sl.axis)
        new.get_layer(layer.name).set_weights(weights)
    if new.input_shape != model.input_shape or new.output_shape != model.output_shape:
        raise AssertionError(f"rebuild changed the model's shapes: {model.output_shape} -> {new.output_shape}")
    return new, positions


def masked_equivalent(model, graph: DependencyGraph, group_kept: dict[str, list[int]]):
    """A copy of `model` (same size) whose removed channels' weights are zero: the producers'
    output slices and the consumers' input slices. Its outputs equal the pruned model's."""
    from tinyprune.tfsetup import keras

    keep = graph.element_keep({k: np.asarray(v) for k, v in group_kept.items()})
    twin = keras.models.clone_model(model)
    for layer in model.layers:
        weights = layer.get_weights()
        for sl in graph.slices:
            if sl.layer != layer.name or sl.role == "through":
                continue
            w = np.moveaxis(weights[sl.weight_index], sl.axis, 0).copy()
            w[~keep[sl.ids]] = 0.0
            weights[sl.weight_index] = np.moveaxis(w, 0, sl.axis)
        if weights:
            twin.get_layer(layer.name).set_weights(weights)
    return twin


# ------------------------------------------------------------------------------------- main


def _layer_rows(before, after, kept_positions: dict[str, np.ndarray], orig_channels: dict[str, int]) -> list[LayerRow]:
    rows = []
    for layer in before.layers:
        if not layer.weights:
            continue
        n0 = orig_channels.get(layer.name)
        rows.append(LayerRow(layer.name, type(layer).__name__, n0,
                             len(kept_positions[layer.name]) if layer.name in kept_positions else n0,
                             int(layer.count_params()), int(after.get_layer(layer.name).count_params())))
    return rows


def prune_structured(model, ratio: float | None = None, *, layer_ratios: dict[str, float] | None = None,
                     group_keep: dict[str, int] | None = None, importance: str | Importance = "l1",
                     reduction: str = "mean", global_ranking: bool = False, ignore: Iterable[str] = (),
                     round_to: int = 1, steps: int = 1, data: Dataset | tuple | np.ndarray | None = None,
                     progress: Callable[[int, int], None] | None = None) -> StructuredResult:
    """Remove channels (filters, units) from `model`; returns a new, smaller model and a record.

    Args:
        ratio: fraction of each prunable group's channels to remove, in [0, 1) (with
            `global_ranking`, the fraction of all prunable channels, allotted by score).
        layer_ratios: {layer name: ratio} for the group of that layer (overrides `ratio`).
        group_keep: {group id: channels to keep} (ids from `build_graph(model).groups`;
            taken as given, not rounded). Overrides both ratios for those groups.
        importance: a name in `importance.IMPORTANCES` ("l1", "l2", "bn", "taylor", "random",
            "scores-<name>") or an `Importance` object.
        reduction: "sum", "mean" or "max" over a group's layers.
        global_ranking: rank channels across groups (scores normalised by each group's mean).
        ignore: layer names whose output channels are kept (the output layer always is).
        round_to: keep counts are multiples of this (CMSIS-NN is fastest at multiples of 4).
        steps: prune in this many equal steps, re-scoring in between.
        data: a `Dataset`, an (x, y) tuple or x; needed by "taylor" and data-based scores.
        progress: optional callable(step, steps) called after each step.
    Raises ConfigError (bad values, unknown names), UnsupportedLayerError (a layer asked for
    cannot be pruned), ModelLoadError (subclassed model), DataError (criterion needs data).
    """
    layer_ratios, group_keep, ignore = dict(layer_ratios or {}), dict(group_keep or {}), tuple(ignore)
    from tinyprune.load.keras3 import as_tf_keras
    from tinyprune.prune.structured.dependency import check_graph_model

    model = as_tf_keras(model, data)  # a Keras 3 model is translated (and checked) first

    check_graph_model(model)
    _validate(model, ratio, layer_ratios, group_keep, reduction, ignore, round_to, steps)
    imp = get_importance(importance)
    if imp.needs_data and data is None:
        from tinyprune.errors import DataError

        raise DataError(f"importance '{imp.name}' needs training data; pass --data (or data=...)")
    output_layers = set(model.output_names)
    ignore_all = tuple(set(ignore) | output_layers)

    graph0 = build_graph(model, ignore_all)
    final = final_targets(graph0, ratio, layer_ratios, group_keep, round_to, global_ranking)
    global_ids = [g.id for g in graph0.groups if global_ranking and ratio is not None and g.prunable
                  and g.id not in final]
    free0 = {g.id: int((~g.fixed).sum()) for g in graph0.groups}
    orig_channels = {n.name: len(n.out_ids) for n in graph0.nodes if n.out_ids is not None}
    group_map = {g.id: np.arange(g.channels) for g in graph0.groups}
    pos_map = {name: np.arange(n) for name, n in orig_channels.items()}

    current, graph = model, graph0
    for step in range(1, steps + 1):
        if step > 1:
            graph = build_graph(current, ignore_all)
        scores = imp.group_scores(graph, data, reduction)
        index = {g.id: gi for gi, g in enumerate(graph.groups)}
        counts: dict[str, int] = {}
        for gid, k_final in final.items():
            n0 = graph0.group(gid).channels
            counts[gid] = max(graph.group(gid).min_keep, n0 - int(round((n0 - k_final) * step / steps)))
        if global_ids:
            total_free = sum(free0[g] for g in global_ids)
            keep_total = int(round(total_free * (1 - ratio * step / steps)))
            counts.update(_global_counts(graph, scores, [index[g] for g in global_ids], keep_total,
                                         round_to if step == steps else 1))
        kept_local = {gid: top_channels(scores[index[gid]], graph.group(gid).fixed, min(k, graph.group(gid).channels))
                      for gid, k in counts.items()}
        _ensure_nonempty(graph, scores, kept_local)
        current, positions = rebuild(current, graph, kept_local)
        for gid, ks in kept_local.items():
            group_map[gid] = group_map[gid][ks]
        for name, pos in positions.items():
            if name in pos_map:
                pos_map[name] = pos_map[name][pos]
        if progress is not None:
            progress(step, steps)

    weighted = {ly.name for ly in model.layers if ly.weights}
    kept = {name: [int(i) for i in pos] for name, pos in pos_map.items() if name in weighted}
    rows = _layer_rows(model, current, {k: v for k, v in pos_map.items()}, orig_channels)
    notes = [n for n in graph0.notes if not any(n.startswith(f"layer '{o}' ") for o in output_layers)]
    if getattr(imp, "name", "") == "bn":
        no_bn = [g.id for g in graph0.groups if g.prunable and not has_batchnorm(graph0, g)]
        if no_bn:
            notes.append(f"importance 'bn': groups without BatchNormalization ranked by l1: {', '.join(no_bn)}")
    return StructuredResult(current, kept, rows, {g: [int(i) for i in v] for g, v in group_map.items()},
                            graph0, notes, getattr(imp, "name", str(importance)))
