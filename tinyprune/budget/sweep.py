"""Accuracy vs flash: prune one model at every (flash budget, board, seed) and plot the trade-off.

The sweep plans the grid of points (boards x budgets x seeds), measures the per-group
sensitivity and the original model's facts (its int8 conversion and its int8 TFLM accuracy on
the validation data) once in this process (they depend on the model and data, not on the
point) and ships them with the model and data to every point, hands the points to a backend
(sweep_backends: serial, local processes or Ray), and writes what comes back:

    OUT/sweep.json       plan, per-point status (done / failed / infeasible / pending, attempts,
                         reason), the finished points' records, the frontier, where the shared
                         sensitivity and original facts were computed (`sensitivity`, `original`)
    OUT/<point id>/      one `prune_for_budget` folder per finished point (report.json, model,
                         .tflite, C source), each written atomically when its point finishes
    OUT/sweep.md         a table per board and the frontier
    OUT/pareto.png       int8 accuracy in TFLM against model bytes, per board, mean over seeds
                         with the min-max spread, dominated budgets hollow; the unpruned model
                         as a star

A point that raised or whose worker died is retried once, then recorded as failed with its
reason; a budget that cannot be met is recorded as infeasible; every finished point is kept.
`resume=True` re-runs the same sweep into the same folder and skips its finished points
(the folder's sweep.json must come from the same model, data and options). The outputs are
the same whichever backend ran. This module plans, aggregates and plots; it does not prune
(search.prune_for_budget, via sweep_point) or schedule (sweep_backends).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from firmware_export.errors import OutputExistsError
from firmware_export.files import check_writable, read_user_text, staged_dir, write_bytes, write_text
from tinyprune.budget.limits import parse_size
from tinyprune.budget.sweep_backends import Backend, SerialBackend, run_jobs
from tinyprune.budget.sweep_point import PointOutcome, PointSpec, SharedSensitivity, SweepInputs, sha256
from tinyprune.errors import BudgetError, ConfigError
from tinyprune.load.data import Dataset
from tinyprune.pipeline.outputs import MODEL_FILE, REPORT_FILE, TFLITE_FILE, write_report

SWEEP_FORMAT = 2  # sweep.json layout version


@dataclass
class SweepPoint:
    """One finished point, as sweep.json records it."""

    budget: str
    flash_limit: float
    int8_bytes: int
    arena_bytes: int
    accuracy_tflm: float | None  # None without class labels
    float_accuracy: float | None
    status: str  # prune_for_budget's: "pruned" or "unchanged"
    folder: str
    seconds: float
    id: str = ""
    board: str | None = None
    seed: int | None = None
    attempts: int = 1
    threads: int | None = None
    tflite_sha256: str = ""
    sensitivity_cached: bool | None = None  # the point found the shared measurement in its cache
    keep: dict[str, int] = field(default_factory=dict)
    host: str = ""  # where the point ran (a Ray cluster: the node)
    pid: int = 0  # the process that ran it (a worker's; the sweep's own when serial)
    node: str = ""  # the Ray node that ran it (one of sweep.json's backend.node_ids; "" off Ray)


@dataclass
class FrontierRow:
    """One (board, budget) over its seeds."""

    board: str | None
    budget: str
    int8_bytes: float  # mean over seeds (the same for every seed when the allocation is)
    accuracy_mean: float | None
    accuracy_min: float | None
    accuracy_max: float | None
    accuracy_std: float | None
    seeds: int
    pareto: bool = False  # no other budget on this board is smaller and at least as accurate


@dataclass
class SweepResult:
    original_bytes: int | None
    original_accuracy: float | None
    points: list[SweepPoint] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # point id -> why it failed / cannot be met
    status: dict[str, dict] = field(default_factory=dict)  # point id -> {status, attempts, reason, folder, ...}
    frontier: list[FrontierRow] = field(default_factory=list)
    budgets: list[str] = field(default_factory=list)
    boards: list[str | None] = field(default_factory=list)
    seeds: list[int | None] = field(default_factory=list)
    backend: dict = field(default_factory=dict)
    sensitivity: dict = field(default_factory=dict)
    original: dict = field(default_factory=dict)  # the original's facts: computed where, how often, result
    seconds: dict = field(default_factory=dict)
    plan_key: str = ""
    format: int = SWEEP_FORMAT

    def to_dict(self) -> dict:
        return asdict(self)

    def render(self, console: Console) -> None:
        from rich.table import Table

        for board in self.boards:
            t = Table(title=f"accuracy vs flash{f' on {board}' if board else ''}")
            for col in ("budget", "seed", "int8 bytes", "% of original", "arena bytes", "int8 accuracy (TFLM)",
                        "attempts", "time s"):
                t.add_column(col, justify="right")
            if self.original_bytes:
                t.add_row("original", "-", f"{self.original_bytes:,}", "100%", "-", _acc(self.original_accuracy), "-",
                          "-")
            for p in self.points:
                if p.board == board:
                    t.add_row(p.budget, _seed(p.seed), f"{p.int8_bytes:,}", _pct(p.int8_bytes, self.original_bytes),
                              f"{p.arena_bytes:,}", _acc(p.accuracy_tflm), str(p.attempts), f"{p.seconds:.0f}")
            for pid, st in self.status.items():
                if st["board"] == board and st["status"] != "done":
                    why = f"{st['status']}: {st['reason'] or ''}"[:48]
                    t.add_row(st["budget"], _seed(st["seed"]), "-", "-", "-", why,
                              str(st["attempts"]), "-")
            console.print(t)
        if self.frontier and len(self.seeds) > 1:
            t = Table(title="frontier: accuracy over seeds (mean, min-max)")
            for col in ("board", "budget", "int8 bytes", "accuracy", "min-max", "seeds", "on frontier"):
                t.add_column(col, justify="right")
            for r in self.frontier:
                t.add_row(r.board or "-", r.budget, f"{r.int8_bytes:,.0f}", _acc(r.accuracy_mean),
                          _range(r.accuracy_min, r.accuracy_max), str(r.seeds), "yes" if r.pareto else "no")
            console.print(t)


def _acc(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def _seed(s: int | None) -> str:
    return "-" if s is None else str(s)


def _pct(n: float, of: float | None) -> str:
    return f"{n / of:.1%}" if of else "-"


def _range(lo: float | None, hi: float | None) -> str:
    return "-" if lo is None else f"{lo:.4f}-{hi:.4f}"


def plan(budgets: list[str], boards: list[str | None] | None = None, seeds: list[int | None] | None = None
         ) -> list[PointSpec]:
    """The grid, board by board, budget by budget, seed by seed."""
    return [PointSpec(b, board, seed) for board in (boards or [None]) for b in budgets for seed in (seeds or [None])]


def frontier(points: list[SweepPoint]) -> list[FrontierRow]:
    """Per (board, budget): bytes and accuracy over seeds; flags the budgets no other beats."""
    groups: dict[tuple, list[SweepPoint]] = {}
    for p in points:
        groups.setdefault((p.board, p.budget), []).append(p)
    rows = []
    for (board, budget), ps in groups.items():
        accs = [p.accuracy_tflm for p in ps if p.accuracy_tflm is not None]
        rows.append(FrontierRow(board, budget, statistics.fmean(p.int8_bytes for p in ps),
                                statistics.fmean(accs) if accs else None, min(accs) if accs else None,
                                max(accs) if accs else None, statistics.pstdev(accs) if accs else None, len(ps)))
    for r in rows:
        if r.accuracy_mean is None:
            continue
        r.pareto = not any(o is not r and o.board == r.board and o.accuracy_mean is not None
                           and o.int8_bytes <= r.int8_bytes and o.accuracy_mean >= r.accuracy_mean
                           and (o.int8_bytes < r.int8_bytes or o.accuracy_mean > r.accuracy_mean) for o in rows)
    return sorted(rows, key=lambda r: (str(r.board), r.int8_bytes))


def plot(result: SweepResult, path: Path) -> bool:
    """pareto.png (see the module docstring); False (nothing written) without matplotlib."""
    from tinyprune.plotting import pyplot

    plt = pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for board in result.boards:
        rows = [r for r in result.frontier if r.board == board and r.accuracy_mean is not None]
        if not rows:
            continue
        xs = [r.int8_bytes / 1024 for r in rows]
        ys = [r.accuracy_mean for r in rows]
        err = [[r.accuracy_mean - r.accuracy_min for r in rows], [r.accuracy_max - r.accuracy_mean for r in rows]]
        line = ax.errorbar(xs, ys, yerr=err, marker=None, capsize=3, label=board or "budget search")[0]
        ax.scatter([x for x, r in zip(xs, rows) if r.pareto], [y for y, r in zip(ys, rows) if r.pareto],
                   color=line.get_color(), zorder=3)
        ax.scatter([x for x, r in zip(xs, rows) if not r.pareto], [y for y, r in zip(ys, rows) if not r.pareto],
                   facecolors="white", edgecolors=line.get_color(), zorder=3)
        for x, y, r in zip(xs, ys, rows):
            ax.annotate(r.budget, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=8)
    if result.original_bytes and result.original_accuracy is not None:
        ax.scatter([result.original_bytes / 1024], [result.original_accuracy], marker="*", s=120, color="black",
                   label="unpruned int8", zorder=4)
    ax.set_xlabel("int8 model bytes (KB) = flash for the model")
    ax.set_ylabel("int8 accuracy in TFLM (validation)")
    if len(result.seeds) > 1:
        ax.set_title(f"mean over {len(result.seeds)} seeds, bars: min-max", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with tempfile.NamedTemporaryFile(suffix=".png") as tmp:
        fig.savefig(tmp.name)
        write_bytes(path, Path(tmp.name).read_bytes(), force=True)
    plt.close(fig)
    return True


def render_markdown(result: SweepResult) -> str:
    """sweep.md: a table per board, then the frontier."""
    lines = ["# tinyprune sweep", ""]
    for board in result.boards:
        lines += [f"## {board or 'no board'}", "", "| budget | seed | int8 bytes | % of original | arena bytes | "
                  "int8 accuracy (TFLM) | attempts | status |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        if result.original_bytes:
            lines.append(f"| original | - | {result.original_bytes:,} | 100% | - | {_acc(result.original_accuracy)} "
                         "| - | - |")
        for p in result.points:
            if p.board == board:
                lines.append(f"| {p.budget} | {_seed(p.seed)} | {p.int8_bytes:,} | "
                             f"{_pct(p.int8_bytes, result.original_bytes)} | {p.arena_bytes:,} | "
                             f"{_acc(p.accuracy_tflm)} | {p.attempts} | done ({p.status}) |")
        for st in result.status.values():
            if st["board"] == board and st["status"] != "done":
                reason = (st["reason"] or "").replace("|", "/")
                lines.append(f"| {st['budget']} | {_seed(st['seed'])} | - | - | - | - | {st['attempts']} | "
                             f"{st['status']}: {reason} |")
        lines.append("")
    lines += ["## Frontier", "",
              "| board | budget | int8 bytes | accuracy mean | min-max | std | seeds | on frontier |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in result.frontier:
        lines.append(f"| {r.board or '-'} | {r.budget} | {r.int8_bytes:,.0f} | {_acc(r.accuracy_mean)} | "
                     f"{_range(r.accuracy_min, r.accuracy_max)} | {_acc(r.accuracy_std)} | {r.seeds} | "
                     f"{'yes' if r.pareto else 'no'} |")
    return "\n".join(lines) + "\n"


def model_h5_bytes(model) -> bytes:
    """The model as .h5 bytes: what every point loads (the same bytes on every backend)."""
    with tempfile.TemporaryDirectory(prefix="tinyprune-sweep-") as tmp:
        path = Path(tmp) / MODEL_FILE
        model.save(path, include_optimizer=False)
        return path.read_bytes()


def shared_sensitivity(model, ds: Dataset, importance: str, round_to: int, quiet: bool) -> SharedSensitivity:
    """Measure sensitivity once (or read it from the cache) the way prune_for_budget will ask for it."""
    from tinyprune.budget.sensitivity import analyze, cache_path
    from tinyprune.prune.structured.dependency import build_graph

    outputs = {tensor._keras_history.layer.name for tensor in model.outputs}
    graph = build_graph(model, tuple(outputs))
    t = time.perf_counter()
    sens = analyze(model, graph, ds, importance=importance, round_to=round_to, quiet=quiet, use_cache=True)
    path = cache_path(model, graph, ds, importance=importance, round_to=round_to)
    text = path.read_text() if path.is_file() else json.dumps({**sens.to_dict(), "cached": False})
    return SharedSensitivity(path.name, text, round(time.perf_counter() - t, 2))


def _plan_key(model, ds: Dataset, options: dict, boards_file: str | None) -> str:
    """What a resumed sweep must share with the one that wrote the folder (the grid may grow)."""
    h = hashlib.sha256()
    h.update(json.dumps([SWEEP_FORMAT, model.to_json(), ds.name, sorted(options.items())], default=str).encode())
    for a in (*model.get_weights(), ds.x_train, ds.y_train, ds.x_val, ds.y_val):
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    if boards_file:
        h.update(Path(boards_file).read_bytes())
    return h.hexdigest()[:24]


def _point_record(spec: PointSpec, outcome: PointOutcome, attempts: int) -> SweepPoint:
    r = outcome.report
    cached = None
    if "sensitivity.json" in outcome.files:
        cached = bool(json.loads(outcome.files["sensitivity.json"]).get("cached"))
    return SweepPoint(spec.budget, r["targets"]["flash_bytes"], r["final"]["int8_bytes"], r["final"]["arena_bytes"],
                      r["accuracy"]["tflm_accuracy"], r["accuracy"]["float_accuracy"], r["status"], spec.id,
                      r["seconds"]["total"], spec.id, spec.board, spec.seed, attempts, outcome.threads,
                      sha256(outcome.files.get(TFLITE_FILE, b"")), cached, r["keep"], outcome.host,
                      outcome.pid, outcome.node)


def _write_point(out_dir: Path, spec: PointSpec, outcome: PointOutcome) -> None:
    """The point's folder, atomically; report.json names the folder it ended up in."""
    target = out_dir / spec.id
    report = dict(outcome.report, output_dir=str(target))
    with staged_dir(target, force=True) as tmp:
        for rel, data in outcome.files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
        write_report(tmp, report)


def _prepare_folder(out_dir: Path, force: bool, resume: bool, key: str) -> dict | None:
    """Check or clear OUT; with `resume`, the previous sweep.json (None when starting fresh)."""
    if resume and force:
        raise ConfigError("--resume keeps a sweep's finished points and --force throws them away: give one")
    if resume and out_dir.exists():
        path = out_dir / "sweep.json"
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            raise ConfigError(f"--resume: {path} is missing or unreadable, so {out_dir} is not a sweep to resume; "
                              "give the folder of an earlier sweep, or a new folder without --resume") from None
        if old.get("plan_key") != key:
            raise ConfigError(f"--resume: {out_dir} holds a sweep of another model, data or options; resume with "
                              "the same ones, or use a new folder (or --force to start over)")
        return old
    if out_dir.exists():
        check_writable(out_dir, force)
        resolved = out_dir.resolve()
        if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents:
            raise OutputExistsError(f"{out_dir} is the current folder or contains it; give a new output folder")
        shutil.rmtree(out_dir) if out_dir.is_dir() else out_dir.unlink()
    out_dir.mkdir(parents=True)
    return None


def check_sweep(budgets: list[str], boards: list[str] | None = None, boards_file: str | None = None, epochs: int = 5,
                batch_size: int = 32, round_to: int = 1, retries: int = 1) -> list[str | None]:
    """Reject a sweep that cannot work before any model is loaded; returns the board names
    (canonical spelling; [None] without boards)."""
    from firmware_export.boards import load_boards, select_boards
    from tinyprune.budget.limits import Budget, check_job

    if not budgets:
        raise BudgetError("give at least one budget, e.g. --budgets 75%,50%,25%")
    for b in budgets:
        parse_size(b, "flash")
    board_names: list[str | None] = [None]
    if boards:
        known = load_boards(boards_file)
        board_names = [b.name for b in select_boards(known, list(dict.fromkeys(boards)), False)]
    for board in board_names:
        Budget.parse(budgets[0], board=board, boards_file=boards_file)
    check_job(round_to, True)
    if epochs < 0:
        raise ConfigError(f"--epochs must be >= 0, got {epochs}")
    if retries < 0:
        raise ConfigError(f"retries must be >= 0, got {retries}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    return board_names


def sweep(model, ds: Dataset, budgets: list[str], out_dir: str | Path, *, boards: list[str] | None = None,
          seeds: list[int] | None = None, boards_file: str | None = None, epochs: int = 5, batch_size: int = 32,
          importance: str = "l1", allocation: str = "sensitivity", round_to: int = 1,
          backend: Backend | None = None, retries: int = 1,
          resume: bool = False, force: bool = False, unsafe_load: bool = False, quiet: bool = False,
          console: Console | None = None) -> SweepResult:
    """Run the budget search at every (board, flash budget, seed) point (see the module docstring).

    `backend` is where the points run (sweep_backends.make_backend; default: serially here).
    `seeds` defaults to [0], so that a sweep is reproducible. Points that failed are in the
    result's `status` and `failed`. Raises BudgetError when no budget can be met (after writing
    sweep.json), ConfigError / BoardError for bad input."""
    console = console or Console(stderr=True, quiet=quiet)
    out_dir = Path(out_dir)
    board_names = check_sweep(budgets, boards, boards_file, epochs, batch_size, round_to, retries)
    seeds = [0] if seeds is None else list(dict.fromkeys(seeds))
    options = {"epochs": epochs, "batch_size": batch_size, "importance": importance, "round_to": round_to,
               "boards_file": boards_file, "allocation": allocation}
    from tinyprune.load.keras3 import as_tf_keras

    model = as_tf_keras(model, ds)  # a Keras 3 model is translated (and checked) once, not once per point
    key = _plan_key(model, ds, options, boards_file)
    backend = backend or SerialBackend()
    backend.open()  # e.g. reach the Ray cluster before anything is written or removed
    try:
        return _run(model, ds, budgets, out_dir, board_names, seeds, options, key, backend, retries, resume, force,
                    unsafe_load, importance, round_to, quiet, console)
    finally:
        backend.close()


def _run(model, ds: Dataset, budgets: list[str], out_dir: Path, board_names: list[str | None], seeds: list,
         options: dict, key: str, backend: Backend, retries: int, resume: bool, force: bool, unsafe_load: bool,
         importance: str, round_to: int, quiet: bool, console: Console) -> SweepResult:
    old = _prepare_folder(out_dir, force, resume, key)
    specs = plan(budgets, board_names, seeds)
    t_all = time.perf_counter()

    result = SweepResult(None, None, budgets=list(budgets), boards=board_names, seeds=seeds, plan_key=key,
                         backend=backend.describe())
    done_before: dict[str, SweepPoint] = {}
    if old:
        result.original_bytes, result.original_accuracy = old.get("original_bytes"), old.get("original_accuracy")
        # the earlier run's facts, marked as not computed by this run; replaced below when points remain
        if old.get("original"):
            result.original = dict(old["original"], computed_in="an earlier run of this sweep", computations=0)
        for p in old.get("points", []):
            finished = old["status"].get(p["id"], {}).get("status") == "done"
            if finished and (out_dir / p["folder"] / REPORT_FILE).is_file():
                done_before[p["id"]] = SweepPoint(**p)
    for s in specs:
        st = "done" if s.id in done_before else "pending"
        prev = (old or {}).get("status", {}).get(s.id, {})
        result.status[s.id] = {"budget": s.budget, "board": s.board, "seed": s.seed, "status": st,
                               "attempts": prev.get("attempts", 0) if st == "done" else 0,
                               "reason": None, "errors": [], "folder": s.id if st == "done" else None}
    result.points = [done_before[s.id] for s in specs if s.id in done_before]
    todo = [s for s in specs if s.id not in done_before]
    if done_before:
        console.print(f"resume: {len(done_before)} finished point(s) kept, {len(todo)} to run")

    def save() -> None:
        order = {s.id: i for i, s in enumerate(specs)}
        result.points.sort(key=lambda p: order.get(p.id, len(order)))
        result.frontier = frontier(result.points)
        write_text(out_dir / "sweep.json", json.dumps(result.to_dict(), indent=2) + "\n", force=True)

    inputs = None
    if todo:
        h5 = model_h5_bytes(model)
        with console.status("measuring sensitivity once for every point"):
            from tinyprune.load.model import load_model

            with tempfile.TemporaryDirectory(prefix="tinyprune-sweep-") as tmp:
                (Path(tmp) / MODEL_FILE).write_bytes(h5)
                shipped = load_model(Path(tmp) / MODEL_FILE, unsafe=unsafe_load)  # what the points load
            sens = shared_sensitivity(shipped, ds, importance, round_to, quiet=True)
        result.sensitivity = {"shared": True, "cache_entry": sens.filename, "seconds": sens.seconds}
        with console.status("converting and scoring the original model once for every point"):
            from tinyprune.budget.search import original_facts
            from tinyprune.load.keras3 import wants_keras3

            orig = original_facts(shipped, ds)  # at prune_for_budget's default calibration, as the points use
            orig.keras3 = wants_keras3(model)  # the points load .h5 bytes: they are told the input was Keras 3
        result.original = {"shared": True, "computed_in": "driver", "computations": 1, "host": socket.gethostname(),
                           "pid": os.getpid(), "int8_bytes": len(orig.tflite), "tflite_sha256": sha256(orig.tflite),
                           "tflm_accuracy": orig.tflm_accuracy, "calibration": orig.calibration,
                           "seconds": orig.seconds}
        boards_text = None  # read here, shipped: a Ray node need not have the file
        if options["boards_file"]:
            boards_text = read_user_text(options["boards_file"], "boards file", "a TOML file with [[board]] tables")
        inputs = SweepInputs(h5, ds, options, sens, unsafe_load, orig, boards_text)
    save()

    from rich.progress import Progress

    t_points = time.perf_counter()  # seconds.points: the points alone (not the shared work above)
    with Progress(console=console, disable=quiet or not todo, transient=True) as bar:
        task = bar.add_task(f"{len(todo)} point(s) on {backend.name}", total=len(todo))

        def on_done(spec: PointSpec, outcome: PointOutcome, earlier: list[str]) -> None:
            st = result.status[spec.id]
            st["attempts"], st["errors"] = len(earlier) + 1, earlier
            if outcome.ok:
                _write_point(out_dir, spec, outcome)
                point = _point_record(spec, outcome, len(earlier) + 1)
                result.points.append(point)
                st.update(status="done", folder=spec.id)
                if result.original_bytes is None:
                    result.original_bytes = outcome.report["original"]["int8_bytes"]
                    result.original_accuracy = outcome.report["accuracy"]["original_int8_tflm"]
                retried = f", after {len(earlier)} failed attempt(s): {earlier[0]}" if earlier else ""
                console.print(f"{spec.id}: {point.int8_bytes:,} B, int8 accuracy {_acc(point.accuracy_tflm)} "
                              f"({outcome.seconds:.0f} s{retried})")
            else:
                st.update(status="infeasible" if outcome.infeasible else "failed", reason=outcome.error)
                result.failed[spec.id] = outcome.error or "failed"
                console.print(f"[yellow]{spec.id}: {st['status']} after {st['attempts']} attempt(s): "
                              f"{outcome.error}[/]")
            result.seconds["points"] = round(time.perf_counter() - t_points, 2)
            save()
            bar.advance(task)

        if todo:
            run_jobs(backend, inputs, todo, on_done, retries=retries)
    result.backend = backend.describe()
    result.seconds["total"] = round(time.perf_counter() - t_all, 2)
    if result.sensitivity:
        result.seconds["sensitivity"] = result.sensitivity["seconds"]
    if result.original.get("computations"):  # time spent in this run only
        result.seconds["original"] = result.original["seconds"]
    save()
    write_text(out_dir / "sweep.md", render_markdown(result), force=True)
    plot(result, out_dir / "pareto.png")
    result.render(console)
    if not result.points and all(st["status"] == "infeasible" for st in result.status.values()):
        first = next(iter(result.failed.values()))
        raise BudgetError(f"no budget of the sweep can be met (see {out_dir / 'sweep.json'}); the first: {first}")
    return result
