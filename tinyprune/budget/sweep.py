"""Accuracy vs flash: prune one model to several flash budgets and plot the trade-off.

Each budget runs the full budget search (`budget_search.prune_for_budget`) into its own
folder; sensitivity is measured once and read from the cache after. The sweep writes
`sweep.json`, a table, and `pareto.png` (int8 accuracy in TFLM against model bytes, with
the unpruned model as the reference point). This module loops and plots; it does not prune.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from firmware_export.files import check_writable, staged_dir
from tinyprune.budget.limits import parse_size
from tinyprune.load.data import Dataset
from tinyprune.errors import BudgetError


@dataclass
class SweepPoint:
    budget: str
    flash_limit: float
    int8_bytes: int
    arena_bytes: int
    accuracy_tflm: float | None  # None without class labels
    float_accuracy: float | None
    status: str
    folder: str
    seconds: float


@dataclass
class SweepResult:
    original_bytes: int
    original_accuracy: float | None
    points: list[SweepPoint] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # budget -> why it could not be met

    def to_dict(self) -> dict:
        return asdict(self)

    def render(self, console: Console) -> None:
        from rich.table import Table

        t = Table(title="accuracy vs flash")
        for col in ("budget", "int8 bytes", "% of original", "arena bytes", "int8 accuracy (TFLM)", "time s"):
            t.add_column(col, justify="right")
        t.add_row("original", f"{self.original_bytes:,}", "100%", "-", ("-" if self.original_accuracy is None else f"{self.original_accuracy:.4f}"), "-")
        for p in self.points:
            t.add_row(p.budget, f"{p.int8_bytes:,}", f"{p.int8_bytes / self.original_bytes:.1%}",
                      f"{p.arena_bytes:,}", ("-" if p.accuracy_tflm is None else f"{p.accuracy_tflm:.4f}"), f"{p.seconds:.0f}")
        for budget, why in self.failed.items():
            t.add_row(budget, "-", "-", "-", why[:40], "-")
        console.print(t)


def plot(result: SweepResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = sorted(result.points, key=lambda p: p.int8_bytes)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    ax.plot([p.int8_bytes / 1024 for p in pts], [p.accuracy_tflm for p in pts], marker="o", label="budget search")
    ax.scatter([result.original_bytes / 1024], [result.original_accuracy], marker="*", s=120, color="black",
               label="unpruned int8", zorder=3)
    for p in pts:
        ax.annotate(p.budget, (p.int8_bytes / 1024, p.accuracy_tflm), textcoords="offset points", xytext=(4, -10),
                    fontsize=8)
    ax.set_xlabel("int8 model bytes (KB) = flash for the model")
    ax.set_ylabel("int8 accuracy in TFLM (validation)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _folder_name(budget: str) -> str:
    return "flash_" + re.sub(r"[^0-9A-Za-z.]+", "", budget.replace("%", "pct"))


def sweep(model, ds: Dataset, budgets: list[str], out_dir: str | Path, *, epochs: int = 5, batch_size: int = 32,
          importance: str = "l1", round_to: int = 1, force: bool = False, quiet: bool = False,
          console: Console | None = None) -> SweepResult:
    """Run the budget search at every flash budget in `budgets` (see the module docstring)."""
    from tinyprune.budget.search import prune_for_budget
    from tinyprune.load.keras3 import as_tf_keras

    console = console or Console(stderr=True, quiet=quiet)
    out_dir = Path(out_dir)
    check_writable(out_dir, force)
    model = as_tf_keras(model, ds)  # translated once, not once per budget
    if not budgets:
        raise BudgetError("give at least one budget, e.g. --budgets 75%,50%,25%")
    for b in budgets:
        parse_size(b, "flash")  # reject a bad budget before any work
    result = None
    with staged_dir(out_dir, force=force) as tmp:
        for b in budgets:
            console.rule(f"flash budget {b}")
            try:
                r = prune_for_budget(model, ds, tmp / _folder_name(b), flash_budget=b, epochs=epochs, batch_size=batch_size,
                                     importance=importance, round_to=round_to, quiet=quiet, console=console)
            except BudgetError as e:
                if result is None:
                    raise
                result.failed[b] = str(e)
                continue
            if result is None:
                result = SweepResult(r.original["int8_bytes"], r.accuracy["original_int8_tflm"])
            result.points.append(SweepPoint(b, r.targets["flash_bytes"], r.final["int8_bytes"], r.final["arena_bytes"],
                                            r.accuracy["tflm_accuracy"], r.accuracy["float_accuracy"], r.status,
                                            _folder_name(b), r.seconds["total"]))
        plot(result, tmp / "pareto.png")
        (tmp / "sweep.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    result.render(console)
    return result
