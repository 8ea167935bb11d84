"""Per-group pruning sensitivity: how much the score drops when one group alone loses a
fraction of its channels, with no fine-tuning.

For each prunable group of the dependency graph and each ratio (default 25/50/75%, plus the
group's most-pruned allowed size, so that no drop is extrapolated), the
least important channels (by the structured pruner's criterion, L1 by default) are zeroed
in a working copy of the model, in every weight slice that carries them (producers' output
slices, consumers' input slices). That copy computes exactly what the pruned model would
(the structured tests check this equivalence), without rebuilding a model per point. The
drop is measured on at most `max_samples` *training* samples (`measured_on`): the validation
samples are kept for the choices made after fine-tuning (allocation shape, fine-tuning mode).
Measured on the validation samples, the allocation was fitted to the very images that then
scored it: on MNIST with 400 validation images, candidates built from that sensitivity scored
about a point higher on validation than on the 10,000 test images, and the uniform candidate,
better on test, lost on validation (docs/benchmarks.md, issue 17).

Results are cached on disk, keyed by the model's weights, the data and the settings, so a
sweep over several budgets measures once. This module measures; it does not allocate
(allocation.py) or prune.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tinyprune import training
from tinyprune.load.data import Dataset
from tinyprune.prune.structured.dependency import DependencyGraph
from tinyprune.prune.structured.importance import get_importance
from tinyprune.prune.structured.pruner import round_keep, top_channels

DEFAULT_RATIOS = (0.25, 0.5, 0.75)
MAX_SAMPLES = 1000  # samples per evaluation: enough to rank groups, cheap to run
CACHE_VERSION = 4  # 4: measured on training samples (3 and before: validation)
TRAIN_SAMPLES_HASHED = 512  # Taylor importance reads 256 training samples (importance.TAYLOR_SAMPLES)


@dataclass
class Sensitivity:
    """Score drop per group at each ratio (positive = worse), and the unpruned score."""

    ratios: list[float]
    base_score: float
    drops: dict[str, list[float]]  # group id -> drop at each ratio
    channels: dict[str, int]
    extreme: dict[str, list[float]] = field(default_factory=dict)  # group id -> [ratio, drop] at min keep
    importance: str = "l1"
    samples: int = 0
    seconds: float = 0.0
    cached: bool = False
    order: list[str] = field(default_factory=list)  # group ids in model order

    def drop(self, group_id: str, ratio: float) -> float:
        """Predicted drop at any ratio: 0 at 0, piecewise linear through the measured points
        (the fixed ratios and the group's most-pruned allowed size), made non-decreasing."""
        if ratio <= 0 or group_id not in self.drops:
            return 0.0
        points = sorted(zip(self.ratios, self.drops[group_id]))
        if group_id in self.extreme:
            points = sorted({*points, tuple(self.extreme[group_id])})
        xs = [0.0, *[p[0] for p in points]]
        ys = np.maximum.accumulate([0.0, *[max(0.0, p[1]) for p in points]])
        if ratio <= xs[-1]:
            return float(np.interp(ratio, xs, ys))
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]) if xs[-1] > xs[-2] else 0.0
        return float(ys[-1] + max(slope, 0.0) * (ratio - xs[-1]))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Sensitivity":
        return cls(**d)

    def render(self, console, top: int | None = None) -> None:
        from rich.table import Table

        t = Table(title=f"sensitivity: training score drop, no fine-tuning "
                        f"(base {self.base_score:.4f}, {self.samples} samples{', cached' if self.cached else ''})")
        t.add_column("group (first producer)")
        t.add_column("channels", justify="right")
        for r in self.ratios:
            t.add_column(f"-{r:.0%}", justify="right")
        t.add_column("min keep", justify="right")
        ids = self.order or list(self.drops)
        if top:
            ids = sorted(ids, key=lambda g: -self.drops[g][-1])[:top]
        for gid in ids:
            ext = self.extreme.get(gid)
            t.add_row(gid, str(self.channels[gid]), *[f"{d:+.4f}" for d in self.drops[gid]],
                      "-" if not ext else f"{ext[1]:+.4f}")
        console.print(t)

    def plot(self, path: Path) -> bool:
        """A line per group: drop vs ratio (PNG). False (nothing written) without matplotlib."""
        from tinyprune.plotting import pyplot

        plt = pyplot()
        if plt is None:
            return False
        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
        for gid in self.order or self.drops:
            pts = sorted({*zip(self.ratios, self.drops[gid]), *([tuple(self.extreme[gid])] if gid in self.extreme else [])})
            ax.plot([0, *[p[0] for p in pts]], [0, *[p[1] for p in pts]], marker="o", label=gid)
        ax.set_xlabel("fraction of the group's channels removed")
        ax.set_ylabel("validation score drop")
        ax.set_title("per-group sensitivity (no fine-tuning)")
        ax.grid(alpha=0.3)
        if len(self.drops) <= 12:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return True


def measured_on(ds: Dataset, max_samples: int = MAX_SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """The samples every sensitivity measurement scores on: the first `max_samples` training
    samples (with their labels, the teacher's where the data had none). Not the validation
    samples: those score the candidates that a sensitivity proposes (see the module docstring)."""
    n = min(max_samples, len(ds.x_train))
    return ds.x_train[:n], ds.y_train[:n]


def cache_dir() -> Path:
    root = os.environ.get("TINYPRUNE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tinyprune")
    return Path(root) / "sensitivity"


def _cache_key(model, graph: DependencyGraph, ds: Dataset, ratios, importance: str, round_to: int, n: int) -> str:
    """Everything the measurement depends on: settings, architecture, weights, which channels
    may go (ignored layers), the evaluation data, and the training data data-based criteria read."""
    h = hashlib.sha256()
    h.update(json.dumps([CACHE_VERSION, list(ratios), importance, round_to, n, ds.name, model.to_json(),
                         [(g.id, g.fixed.tolist()) for g in graph.groups]]).encode())
    x, y = measured_on(ds, n)
    arrays = [*model.get_weights(), x, y, ds.x_train[:TRAIN_SAMPLES_HASHED], ds.y_train[:TRAIN_SAMPLES_HASHED]]
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:24]


def cache_path(model, graph: DependencyGraph, ds: Dataset, ratios=DEFAULT_RATIOS, importance: str = "l1",
               round_to: int = 1, max_samples: int = MAX_SAMPLES) -> Path:
    """The cache file in which `analyze` with these arguments keeps its result (a sweep ships
    this entry to its workers so that the pass runs once per model)."""
    n = len(measured_on(ds, max_samples)[0])
    return cache_dir() / f"{_cache_key(model, graph, ds, ratios, importance, round_to, n)}.json"


def _zeroable_slices(graph: DependencyGraph) -> dict[str, list]:
    by_layer: dict[str, list] = {}
    for sl in graph.slices:
        if sl.role != "through":
            by_layer.setdefault(sl.layer, []).append(sl)
    return by_layer


def analyze(model, graph: DependencyGraph, ds: Dataset, ratios=DEFAULT_RATIOS, importance: str = "l1",
            round_to: int = 1, max_samples: int = MAX_SAMPLES, use_cache: bool = True,
            quiet: bool = False) -> Sensitivity:
    """Measure every prunable group's sensitivity (see the module docstring)."""
    from rich.console import Console
    from rich.progress import Progress

    from tinyprune.tfsetup import keras

    x, y = measured_on(ds, max_samples)
    n = len(x)
    path = cache_path(model, graph, ds, ratios, importance, round_to, max_samples)
    if use_cache and path.is_file():
        try:
            s = Sensitivity.from_dict(json.loads(path.read_text()))
            s.cached = True
            return s
        except (ValueError, TypeError):
            pass  # a damaged cache entry is measured again
    t0 = time.perf_counter()
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    base = training.score(training.predict(twin, x), y)
    scores = get_importance(importance).group_scores(graph, ds)
    slices = _zeroable_slices(graph)
    prunable = [(gi, g) for gi, g in enumerate(graph.groups) if g.prunable]
    drops: dict[str, list[float]] = {}
    extreme: dict[str, list[float]] = {}
    with Progress(transient=True, disable=quiet, console=Console(stderr=True)) as bar:
        task = bar.add_task("sensitivity", total=len(prunable) * (len(ratios) + 1))
        for gi, g in prunable:
            layers = sorted({sl.layer for lid in g.layers for sl in slices.get(lid, [])})
            saved = {name: twin.get_layer(name).get_weights() for name in layers}
            row = []
            k_min = round_keep(g.min_keep, g.channels, round_to, g.min_keep)
            r_min = 1 - k_min / g.channels
            for r in [*ratios, r_min]:
                k = round_keep(g.channels * (1 - r), g.channels, round_to, g.min_keep)
                kept = top_channels(scores[gi], g.fixed, k)
                keep = graph.element_keep({g.id: kept})
                for name in layers:
                    weights = [w.copy() for w in saved[name]]
                    for sl in slices[name]:
                        w = np.moveaxis(weights[sl.weight_index], sl.axis, 0)
                        w[~keep[sl.ids]] = 0.0
                    twin.get_layer(name).set_weights(weights)
                row.append(base - training.score(training.predict(twin, x), y))
                bar.advance(task)
            for name in layers:
                twin.get_layer(name).set_weights(saved[name])
            drops[g.id] = [round(float(d), 6) for d in row[:-1]]
            extreme[g.id] = [round(r_min, 6), round(float(row[-1]), 6)]
    s = Sensitivity(list(ratios), float(base), drops, {g.id: g.channels for _, g in prunable}, extreme,
                    importance, n, round(time.perf_counter() - t0, 2), False, [g.id for _, g in prunable])
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(s.to_dict()))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs time
    return s
