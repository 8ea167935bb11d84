"""Prune for a budget: make a model fit flash / RAM / latency limits, losing as little
accuracy as possible, and prove it on the exported artifact.

    1. convert the original to int8 and measure it (bytes, TFLM arena, estimated latency);
       resolve the budgets (percent, a board's free flash and SRAM, a safety margin);
    2. if the original already fits: nothing to do, it is written unchanged;
    3. build the dependency graph and the size predictor; if even the smallest allowed model
       cannot fit, stop before any training and say what the smallest is;
    4. measure per-group sensitivity (cached);
    5. allocate channel counts per group (greedy, allocation.py), remove them
       (structured.prune_structured), convert, and measure the real bytes and arena; if the
       artifact misses, tighten the predicted limits by the miss and repeat (bounded);
    6. fine-tune (early stopping on validation loss), convert again, measure again: bytes and
       arena depend on the shapes, not the trained values, so the allocation still fits; this
       is checked, and a miss stops the run with nothing written;
    7. write the model, .tflite, C export, report.json / report.md, sensitivity table and plot.

This module orchestrates; the pieces live in predictor, sensitivity, allocation,
structured/, quantize, firmware_export.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console

from firmware_export import tflm
from firmware_export.boards import DEFAULT_BOARDS, Board, load_boards, select_boards
from firmware_export.estimate import fit_model, flash_bytes, ram_overhead_bytes
from firmware_export.files import check_writable, staged_dir
from firmware_export.compress import EXPERIMENTAL_NOTE
from firmware_export.tflite_model import parse_tflite
from tinyprune import training
from tinyprune.keras_facts import main_kernel
from tinyprune.budget.allocation import Limits, allocate, smallest
from tinyprune.budget.limits import Budget, check_request, parse_latency, parse_size
from tinyprune.load.data import Dataset
from tinyprune.load.keras3 import KERAS3_FILE, as_tf_keras, save_keras3, wants_keras3
from tinyprune.errors import BudgetError, ConfigError
from tinyprune.budget.predictor import SizePredictor
from tinyprune.quantize.int8 import quantize_int8
from tinyprune.budget.sensitivity import analyze
from tinyprune.prune.structured.dependency import build_graph
from tinyprune.prune.structured.pruner import prune_structured

MAX_ROUNDS = 5  # allocate -> measure -> tighten rounds before giving up
QUICK_CALIBRATION = 64  # samples for the sizing conversions: bytes and arena do not depend on it
TIGHTEN_SLACK = 0.995  # aim a little below a missed limit on the next round
EARLY_STOPPING = 3  # epochs without a better validation loss before fine-tuning stops
COMPRESS_BITS = 4  # LUT index bits with --allow-compress (16 values per channel)
CLUSTER_EPOCHS = 1  # fine-tuning of the clustered model before the final LUT compression


@dataclass
class Measured:
    """Facts of one int8 artifact."""

    int8_bytes: int
    arena_bytes: int  # 32-bit TFLM arena
    ram_bytes: int  # arena + interpreter + stack (firmware_export.estimate)
    latency_ms: float | None  # estimated on the budget's board (None without a board)
    macs: int
    arena_head_bytes: int = 0  # the arena's activation (non-persistent) part
    runtime_code_bytes: int = 0  # TFLM code for this model's ops on the board (0 without a board)


@dataclass
class Targets:
    """Absolute limits on the artifact; None = no limit."""

    flash_bytes: float | None = None
    ram_bytes: float | None = None
    latency_ms: float | None = None
    board: str | None = None
    margin: float = 0.0
    asked: dict = field(default_factory=dict)

    def misses(self, m: Measured) -> dict[str, tuple[float, float]]:
        out = {}
        for name, value, limit in (("flash", m.int8_bytes, self.flash_bytes), ("ram", m.ram_bytes, self.ram_bytes),
                                   ("latency", m.latency_ms, self.latency_ms)):
            if limit is not None and value is not None and value > limit:
                out[name] = (value, limit)
        return out

    def describe(self) -> str:
        parts = []
        if self.flash_bytes is not None:
            parts.append(f"flash {self.flash_bytes / 1024:.1f} KB")
        if self.ram_bytes is not None:
            parts.append(f"RAM {self.ram_bytes / 1024:.1f} KB")
        if self.latency_ms is not None:
            parts.append(f"latency {self.latency_ms:.2f} ms")
        return ", ".join(parts) + (f" (board {self.board})" if self.board else "")


@dataclass
class BudgetResult:
    status: str  # "pruned" or "unchanged"
    targets: dict
    original: dict
    final: dict
    keep: dict[str, int]
    rounds: list[dict]
    accuracy: dict
    layers: list[dict]
    fit: dict
    seconds: dict[str, float]
    output_dir: str
    files: list[str] = field(default_factory=list)
    compression: dict | None = None  # set when the artifact is LUT-compressed (--allow-compress)

    def to_dict(self) -> dict:
        return asdict(self)


def artifact(model, ds: Dataset, calibration: int, bits: int | None, cluster_epochs: int = 0,
             quiet: bool = True) -> tuple[bytes, bytes, object]:
    """(artifact .tflite, its int8 .tflite before compression, the Keras model behind it).

    Without `bits` the artifact is the plain int8 conversion. With `bits` the model is first
    clustered to 2^bits values per channel (fine-tuned `cluster_epochs`), converted, and
    LUT-compressed for TFLM.
    """
    if bits is None:
        data = quantize_int8(model, ds.x_train, calibration)
        return data, data, model
    from firmware_export.compress import compress_model
    from tinyprune.prune.clustering import cluster_model

    clustered = cluster_model(model, ds, bits, epochs=cluster_epochs, quiet=quiet).model
    int8 = quantize_int8(clustered, ds.x_train, calibration)
    return compress_model(int8, "lut", bits, measure=False).data, int8, clustered


def compression_factors(model, ds: Dataset, bits: int, original_tflite: bytes) -> dict[str, float]:
    """Predicted-limit factors that account for LUT compression, measured on the original:
    the int8 limit is loosened by how much flash LUT saves, the arena limit tightened by the
    decoded tensors it adds."""
    compressed, int8, _ = artifact(model, ds, QUICK_CALIBRATION, bits)
    arena_int8 = tflm.measure_arena(int8).target_bytes
    arena_lut = tflm.measure_arena(compressed).target_bytes
    return {"int8_bytes": len(int8) / len(compressed), "arena_bytes": arena_int8 / arena_lut}


def measure(tflite: bytes, board: Board | None) -> Measured:
    """Bytes, 32-bit arena, RAM and (with a board) estimated latency of an int8 .tflite."""
    model = parse_tflite(tflite)
    arena = tflm.measure_arena(tflite)
    latency = None
    if board is not None:
        latency = fit_model(model, [board], arena=arena).results[0].latency_ms
    from firmware_export.costmodel import model_cost

    code = flash_bytes(model, board.kernels)[0] if board is not None else 0
    return Measured(len(tflite), arena.target_bytes, arena.target_bytes + ram_overhead_bytes(model), latency,
                    int(model_cost(model).total_macs), arena.head_bytes, code)


def resolve_targets(flash_budget: str | None, ram_budget: str | None, latency_budget: str | None,
                    board: Board | None,
                    margin: float, original: Measured) -> Targets:
    """Absolute limits from the user's budget strings, the board and the original's figures.

    The request must have passed `budget.check_request` (parsable, a board for latency)."""
    t = Targets(board=board.name if board else None, margin=margin,
                asked={"flash": flash_budget, "ram": ram_budget, "latency": latency_budget,
                       "board": board.name if board else None})

    def absolute(b: Budget, original_value: float) -> float:
        return b.resolve(original_value).limit * (1 - margin)

    if flash_budget:
        t.flash_bytes = absolute(parse_size(flash_budget, "flash"), original.int8_bytes)
    if ram_budget:
        t.ram_bytes = absolute(parse_size(ram_budget, "RAM"), original.ram_bytes)
    if latency_budget:
        t.latency_ms = absolute(parse_latency(latency_budget), original.latency_ms)
    if board is not None:
        board_flash = (board.flash_bytes - original.runtime_code_bytes) * (1 - margin)
        board_ram = board.sram_bytes * (1 - margin)
        t.flash_bytes = board_flash if t.flash_bytes is None else min(t.flash_bytes, board_flash)
        t.ram_bytes = board_ram if t.ram_bytes is None else min(t.ram_bytes, board_ram)
    return t


def _limits(t: Targets, original: Measured, factors: dict[str, float]) -> Limits:
    """Targets on the artifact -> limits on the predictor's quantities."""
    overhead = original.ram_bytes - original.arena_bytes
    macs = None
    if t.latency_ms is not None and original.latency_ms:
        macs = original.macs * t.latency_ms / original.latency_ms  # latency is linear in MACs per op kind
    return Limits(t.flash_bytes, None if t.ram_bytes is None else t.ram_bytes - overhead, macs).scaled(factors)


def _tighten(miss: dict[str, tuple[float, float]], got: Measured) -> dict[str, float]:
    """By how much to scale each predicted limit after the artifact missed.

    RAM is arena + a fixed overhead, so its miss is applied to the arena alone; latency is
    proportional to MACs (the fit estimator's per-op overhead makes this slightly optimistic,
    which the next round's measurement corrects)."""
    out = {}
    if "flash" in miss:
        value, limit = miss["flash"]
        out["int8_bytes"] = limit / value
    if "ram" in miss:
        value, limit = miss["ram"]
        overhead = got.ram_bytes - got.arena_bytes
        out["arena_bytes"] = max(limit - overhead, 1.0) / got.arena_bytes
    if "latency" in miss:
        value, limit = miss["latency"]
        out["macs"] = limit / value
    return out


def layer_table(before, after) -> list[dict]:
    """Per layer with weights: channels, parameters (= int8 weight bytes) and MACs, before/after."""

    def macs(layer) -> int:
        kernel = main_kernel(layer)
        if kernel is None:
            return 0
        n = int(np.prod(kernel.shape))
        if getattr(layer, "pointwise_kernel", None) is not None:
            n += int(np.prod(layer.pointwise_kernel.shape))
        shape = layer.output_shape
        spatial = int(np.prod(shape[1:-1])) if isinstance(shape, tuple) and len(shape) > 2 else 1
        return n * spatial

    rows = []
    for layer in before.layers:
        if not layer.weights:
            continue
        new = after.get_layer(layer.name)
        ch = lambda lay: lay.output_shape[-1] if isinstance(lay.output_shape, tuple) else None  # noqa: E731
        rows.append({"layer": layer.name, "type": type(layer).__name__,
                     "channels_before": ch(layer), "channels_after": ch(new),
                     "params_before": int(layer.count_params()), "params_after": int(new.count_params()),
                     "macs_before": macs(layer), "macs_after": macs(new)})
    return rows


def prune_for_budget(model, ds: Dataset | None, out_dir: str | Path, *, flash_budget: str | None = None,
                     ram_budget: str | None = None, latency_budget: str | None = None, board: str | None = None,
                     boards_file: str | None = None, margin: float = 0.0, epochs: int = 5,
                     batch_size: int = 32, importance: str = "l1", round_to: int = 1,
                     calibration: int = 300, name: str = "model", force: bool = False,
                     quiet: bool = False, console: Console | None = None, use_cache: bool = True,
                     allow_compress: bool = False, bits: int = COMPRESS_BITS, ignore: tuple[str, ...] = (),
                     seed: int | None = None) -> BudgetResult:
    """Prune `model` to meet the budgets and write OUT/ (see the module docstring).

    With `allow_compress`, when channel removal alone cannot meet the budget, the artifact is
    also clustered (tfmot, at most 2^bits values per channel) and LUT-compressed for TFLM
    (firmware_export.compress); the compressed .tflite is then what is measured and exported.

    `seed` (when given) fixes TensorFlow's, NumPy's and Python's random state before any work.

    Raises BudgetError when no allocation can meet the budget (with the smallest achievable),
    DataError without validation data, BoardError for an unknown board.
    """
    console = console or Console(stderr=True, quiet=quiet)
    out_dir = Path(out_dir)
    check_writable(out_dir, force)
    model = as_tf_keras(model, ds)  # a Keras 3 model is translated (and checked) first
    check_request(flash_budget, ram_budget, latency_budget, board, boards_file, margin, round_to, ds is not None)
    if epochs < 0:
        raise ConfigError(f"--epochs must be >= 0, got {epochs}")
    if round_to < 1 or batch_size < 1:
        raise ConfigError(f"--round-to and --batch-size must be >= 1, got {round_to} and {batch_size}")
    unknown = [n for n in ignore if n not in {layer.name for layer in model.layers}]
    if unknown:
        raise ConfigError(f"--ignore: no layer named {', '.join(unknown)} in the model")
    if seed is not None:
        from tinyprune.tfsetup import keras

        keras.utils.set_random_seed(seed)
    boards = load_boards(boards_file)
    the_board = select_boards(boards, [board], False)[0] if board else None
    seconds: dict[str, float] = {}
    t_all = time.perf_counter()

    # 1. the original, measured
    t = time.perf_counter()
    training.compile_for(model, ds)
    original_tflite = quantize_int8(model, ds.x_train, calibration)
    original = measure(original_tflite, the_board)
    targets = resolve_targets(flash_budget, ram_budget, latency_budget, the_board, margin, original)
    seconds["measure original"] = round(time.perf_counter() - t, 2)
    console.print(f"original: {original.int8_bytes:,} B int8, arena {original.arena_bytes:,} B, "
                  f"RAM {original.ram_bytes:,} B" + (f", ~{original.latency_ms:.1f} ms on {the_board.name}"
                                                     if the_board else ""))
    console.print(f"budget: {targets.describe()}")

    # 2. nothing to do
    if not targets.misses(original):
        console.print("[green]the original model already meets the budget: nothing to prune; "
                      "it is written unchanged[/]")
        return _write(model, model, original_tflite, original, original, targets, {}, [], None, ds, the_board,
                      boards, out_dir, name, force, seconds, t_all, "unchanged", console, calibration)

    # 3. graph, predictor, feasibility (before any training)
    t = time.perf_counter()
    outputs = {tensor._keras_history.layer.name for tensor in model.outputs}
    graph = build_graph(model, tuple(outputs | set(ignore)))
    predictor = SizePredictor(model, graph, original.int8_bytes, original.arena_bytes,
                              original.arena_head_bytes)
    base_limits = _limits(targets, original, {})
    small = smallest(graph, predictor, round_to)
    compress_bits = None
    factors: dict[str, float] = {}
    if base_limits.deficits(small):
        why = (f"budget {targets.describe()} cannot be met by removing channels: the smallest model is about "
               f"{small.int8_bytes / 1024:.1f} KB int8 with a {small.arena_bytes / 1024:.1f} KB arena "
               f"(RAM {(small.arena_bytes + original.ram_bytes - original.arena_bytes) / 1024:.1f} KB)")
        if not allow_compress:
            hint = "; --allow-compress may reach it" if "int8_bytes" in base_limits.deficits(small) else ""
            raise BudgetError(why + hint)
        compress_bits = bits
        factors = compression_factors(model, ds, bits, original_tflite)
        if base_limits.scaled(factors).deficits(small):
            raise BudgetError(why + f", and {bits}-bit LUT compression brings the model to only about "
                              f"{small.int8_bytes / factors['int8_bytes'] / 1024:.1f} KB")
        console.print(f"[yellow]channel removal alone cannot meet the budget: adding {bits}-bit TFLM LUT "
                      f"compression (measured on the original: x{1 / factors['int8_bytes']:.2f} flash, "
                      f"x{1 / factors['arena_bytes']:.2f} arena). {EXPERIMENTAL_NOTE}[/]")
    seconds["graph + predictor"] = round(time.perf_counter() - t, 2)

    # 4. sensitivity
    t = time.perf_counter()
    sens = analyze(model, graph, ds, importance=importance, round_to=round_to, quiet=quiet, use_cache=use_cache)
    seconds["sensitivity"] = round(time.perf_counter() - t, 2)
    if not quiet:
        sens.render(console, top=12)

    # 5. allocate, remove, measure the artifact, tighten
    t = time.perf_counter()
    rounds = []
    for i in range(MAX_ROUNDS):
        alloc = allocate(graph, predictor, sens, _limits(targets, original, {}).scaled(factors), round_to)
        pruned = prune_structured(model, group_keep=alloc.keep, importance=importance, data=ds, ignore=ignore)
        quick, _, _ = artifact(pruned.model, ds, QUICK_CALIBRATION, compress_bits, cluster_epochs=0)
        got = measure(quick, the_board)
        miss = targets.misses(got)
        rounds.append({"round": i + 1, "keep": alloc.keep, "predicted_int8_bytes": alloc.prediction.int8_bytes,
                       "predicted_arena_bytes": alloc.prediction.arena_bytes, "predicted_drop": alloc.predicted_drop,
                       "measured": asdict(got), "misses": {k: list(v) for k, v in miss.items()}})
        console.print(f"round {i + 1}: predicted {alloc.prediction.int8_bytes:,} B / arena "
                      f"{alloc.prediction.arena_bytes:,} B; measured {got.int8_bytes:,} B / arena "
                      f"{got.arena_bytes:,} B" + ("  [green]fits[/]" if not miss else "  [yellow]misses[/]"))
        if not miss:
            break
        for resource, ratio in _tighten(miss, got).items():
            factors[resource] = factors.get(resource, 1.0) * ratio * TIGHTEN_SLACK
    else:
        raise BudgetError(f"after {MAX_ROUNDS} rounds the artifact still misses {targets.describe()}; "
                          "try a looser budget or a smaller --round-to")
    seconds["allocate + remove"] = round(time.perf_counter() - t, 2)

    # 6. fine-tune, convert, check again
    t = time.perf_counter()
    tuned = pruned.model
    training.compile_for(tuned, ds)
    training.train(tuned, ds, epochs, batch_size, description="fine-tuning", quiet=quiet,
                   early_stopping=EARLY_STOPPING)
    seconds["fine-tune"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    final_tflite, final_int8, final_keras = artifact(tuned, ds, calibration, compress_bits,
                                                     cluster_epochs=CLUSTER_EPOCHS, quiet=quiet)
    final = measure(final_tflite, the_board)
    if targets.misses(final):  # sizes do not depend on trained values; this guards converter surprises
        what = ", ".join(f"{k} {v:,.0f} > {lim:,.0f}" for k, (v, lim) in targets.misses(final).items())
        raise BudgetError(f"the fine-tuned artifact misses the budget ({what}); nothing was written: "
                          "retry with --margin 0.02")
    seconds["convert + measure"] = round(time.perf_counter() - t, 2)
    return _write(model, final_keras, final_tflite, original, final, targets, alloc.keep, rounds, sens, ds,
                  the_board, boards, out_dir, name, force, seconds, t_all, "pruned", console, calibration,
                  original_tflite=original_tflite, compressed_from=final_int8 if compress_bits else None,
                  bits=compress_bits)


def _write(model, final_model, final_tflite: bytes, original: Measured, final: Measured, targets: Targets,
           keep: dict, rounds: list, sens, ds: Dataset, board: Board | None, boards: dict, out_dir: Path,
           name: str, force: bool, seconds: dict, t_all: float, status: str, console: Console,
           calibration: int, original_tflite: bytes | None = None, compressed_from: bytes | None = None,
           bits: int | None = None) -> BudgetResult:
    from firmware_export.cexport import export_c
    from tinyprune.quantize.parity import parity_report

    t = time.perf_counter()
    # ai-edge-litert cannot run TFLM's DECODE op: parity is taken on the int8 model before LUT
    # compression, and the compressed model's TFLM outputs are checked bit-identical to it.
    parity = parity_report(final_model, compressed_from or final_tflite, ds.x_val, ds.y_val)
    compression = None
    if compressed_from is not None:
        same = bool(np.array_equal(tflm.run(final_tflite, ds.x_val), tflm.run(compressed_from, ds.x_val)))
        compression = {"method": "tflm-lut", "bits": bits, "int8_bytes": len(compressed_from),
                       "compressed_bytes": len(final_tflite), "tflm_outputs_bit_identical": same,
                       "note": EXPERIMENTAL_NOTE}
    original_tflm = parity.tflm_accuracy
    if original_tflite is not None and ds.is_classification:  # top-1 of raw int8 outputs is the class
        original_tflm = training.score(tflm.run(original_tflite, ds.x_val), ds.y_val)
    elif original_tflite is not None:
        original_tflm = None  # no class labels: accuracy is not defined (parity reports agreement)
    accuracy = {"original_float": training.evaluate(model, ds), "original_int8_tflm": original_tflm,
                **{k: v for k, v in parity.to_dict().items()}}
    fit_boards = [board] if board else select_boards(boards, list(DEFAULT_BOARDS), False)
    fit = fit_model(final_tflite, fit_boards)
    layers = layer_table(model, final_model)
    seconds["report"] = round(time.perf_counter() - t, 2)
    seconds["total"] = round(time.perf_counter() - t_all, 2)
    result = BudgetResult(status, asdict(targets), asdict(original), asdict(final), keep, rounds, accuracy, layers,
                          json.loads(fit.to_json()), seconds, str(out_dir), compression=compression)
    with staged_dir(out_dir, force=force) as tmp:
        final_model.save(tmp / "model.h5", include_optimizer=False)
        if wants_keras3(model):  # the input was Keras 3: the pruned float model as Keras 3 too
            save_keras3(final_model, tmp / KERAS3_FILE)
        (tmp / "model_int8.tflite").write_bytes(compressed_from or final_tflite)
        if compressed_from is not None:
            (tmp / "model_int8_lut.tflite").write_bytes(final_tflite)
        export_c(final_tflite, tmp / "firmware", name=name)
        if sens is not None:
            (tmp / "sensitivity.json").write_text(json.dumps(sens.to_dict(), indent=2) + "\n")
            sens.plot(tmp / "sensitivity.png")
        result.files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file()) + \
            ["report.json", "report.md"]
        (tmp / "report.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        (tmp / "report.md").write_text(render_markdown(result))
    render_console(result, console)
    fit.render(console)
    return result


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def _kb(n: float | None) -> str:
    return "-" if n is None else f"{n / 1024:.1f} KB"


def render_markdown(r: BudgetResult) -> str:
    """report.md: what was asked, what was measured, per-layer before/after, time spent."""
    o, f, a = r.original, r.final, r.accuracy

    def pct(v):
        return "-" if v is None else f"{v:.2%}"

    lat = r.targets["latency_ms"]
    lines = [f"# tinyprune budget report ({r.status})", "",
             f"Budget: flash {_kb(r.targets['flash_bytes'])}, RAM {_kb(r.targets['ram_bytes'])}, latency "
             + ("-" if lat is None else f"{lat:.2f} ms")
             + (f" on {r.targets['board']}" if r.targets['board'] else "")
             + (f", margin {r.targets['margin']:.0%}" if r.targets['margin'] else ""), "",
             "| | original | pruned |", "| --- | ---: | ---: |",
             f"| int8 .tflite bytes (flash for the model) | {o['int8_bytes']:,} | {f['int8_bytes']:,} |",
             f"| TFLM arena, 32-bit | {o['arena_bytes']:,} | {f['arena_bytes']:,} |",
             f"| RAM (arena + interpreter + stack) | {o['ram_bytes']:,} | {f['ram_bytes']:,} |",
             f"| MACs | {o['macs']:,} | {f['macs']:,} |"]
    if o["latency_ms"] is not None:
        lines.append(f"| estimated latency ms | {o['latency_ms']:.2f} | {f['latency_ms']:.2f} |")
    if r.compression:
        c = r.compression
        lines += ["", f"The artifact is {c['bits']}-bit TFLM LUT compressed: {c['int8_bytes']:,} B int8 -> "
                  f"{c['compressed_bytes']:,} B; its TFLM outputs are "
                  f"{'bit-identical to' if c['tflm_outputs_bit_identical'] else 'DIFFERENT from'} the int8 model's. "
                  f"The arena includes the decoded weights. {c['note']}.", ""]
    lines += [f"| accuracy, float Keras | {pct(a['original_float'])} | {pct(a['float_accuracy'])} |",
              f"| accuracy, int8 in TFLM | {pct(a['original_int8_tflm'])} | {pct(a['tflm_accuracy'])} |",
              f"| accuracy, int8 in TFLite | - | {pct(a['tflite_accuracy'])} |", "",
              "Bytes and arena are measured on the artifact (the real int8 .tflite in the real TFLM "
              "interpreter, arena adjusted to a 32-bit target); latency is the fit estimator's.", "",
              "## Per layer", "", "| layer | type | channels | params (int8 bytes) | MACs |",
              "| --- | --- | ---: | ---: | ---: |"]
    for row in r.layers:
        lines.append(f"| {row['layer']} | {row['type']} | {row['channels_before']} -> {row['channels_after']} | "
                     f"{row['params_before']:,} -> {row['params_after']:,} | {row['macs_before']:,} -> "
                     f"{row['macs_after']:,} |")
    lines += ["", "## Fit", "", "| board | flash | RAM | latency ms (range) | fits |", "| --- | ---: | ---: | ---: | --- |"]
    for b in r.fit["boards"]:
        lines.append(f"| {b['board']} | {b['flash_bytes']:,} / {b['flash_available']:,} | {b['ram_bytes']:,} / "
                     f"{b['ram_available']:,} | {b['latency_ms']:.2f} ({b['latency_ms_low']:.2f}-"
                     f"{b['latency_ms_high']:.2f}) | {'yes' if b['fits'] else 'no: ' + b['overshoot']} |")
    lines += ["", "## Time", "", "| stage | s |", "| --- | ---: |"]
    lines += [f"| {k} | {v} |" for k, v in r.seconds.items()]
    return "\n".join(lines) + "\n"


def render_console(r: BudgetResult, console: Console) -> None:
    from rich.table import Table

    o, f, a = r.original, r.final, r.accuracy
    t = Table(title=f"prune for budget: {r.status}")
    t.add_column("")
    t.add_column("original", justify="right")
    t.add_column("result", justify="right")
    t.add_column("budget", justify="right")
    t.add_row("int8 bytes", f"{o['int8_bytes']:,}", f"{f['int8_bytes']:,}", _kb(r.targets["flash_bytes"]))
    t.add_row("RAM bytes", f"{o['ram_bytes']:,}", f"{f['ram_bytes']:,}", _kb(r.targets["ram_bytes"]))
    if o["latency_ms"] is not None:
        lim = r.targets["latency_ms"]
        t.add_row("latency ms (est.)", f"{o['latency_ms']:.2f}", f"{f['latency_ms']:.2f}",
                  "-" if lim is None else f"{lim:.2f}")
    t.add_row("accuracy (int8, TFLM)", _num(a["original_int8_tflm"]), _num(a["tflm_accuracy"]), "")
    console.print(t)
