"""A user's own measured latencies: refit the latency factor of their boards, save it beside the boards file.

`calibrate_boards(measured_csv, boards_file)` reads a CSV with the columns `model,board,ms` (one
measured inference per line: the .tflite path, relative to the CSV's folder or absolute; a board
name from the shipped profiles or the boards file; the measured milliseconds), estimates each
row with the shipped latency model, and fits one factor per board: the geometric mean of
measured / estimated. The range of that board becomes the spread of its rows around the factor
(at least `MIN_UNCERTAINTY`; `SINGLE_ROW_UNCERTAINTY` with one row, which cannot show a spread).
The result is written (atomically) to `<boards file>.calibration.toml`, next to the boards file,
and `tinyprune fit --boards-file F` picks it up from there (`load_user_calibration`).

It never imports TensorFlow and does not measure anything itself (the user did).
"""

from __future__ import annotations

import csv
import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from firmware_export.boards import load_boards
from firmware_export.errors import BoardError, ConfigError
from firmware_export.files import check_writable, write_text

MIN_UNCERTAINTY = 0.10  # a measured board is still not exact: input-dependent paths, clocks, caches
SINGLE_ROW_UNCERTAINTY = 0.25  # one measurement gives the level but no spread
COLUMNS = ("model", "board", "ms")


@dataclass
class MeasuredRow:
    model: str
    board: str
    measured_ms: float
    estimated_ms: float = 0.0


@dataclass
class BoardCalibration:
    board: str
    factor: float  # measured / shipped estimate (geometric mean over the board's rows)
    uncertainty: float
    rows: list[MeasuredRow] = field(default_factory=list)


@dataclass
class CalibrationResult:
    """What `calibrate_boards` fitted and where it saved it."""

    path: Path
    boards: list[BoardCalibration]

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "boards": [asdict(b) for b in self.boards]}

    def render(self, console: Any) -> None:
        from rich.table import Table

        t = Table(title=f"latency calibration -> {self.path}")
        for col in ("board", "rows", "factor", "range"):
            t.add_column(col, justify="left" if col == "board" else "right")
        for b in self.boards:
            t.add_row(b.board, str(len(b.rows)), f"{b.factor:.3f}", f"x/÷ {1 + b.uncertainty:.2f}")
        console.print(t)


def calibration_path(boards_file: str | Path) -> Path:
    """Where the calibration of `boards_file` lives: `<boards file>.calibration.toml` beside it."""
    p = Path(boards_file)
    return p.with_name(p.stem + ".calibration.toml")


def read_measured(path: str | Path) -> list[MeasuredRow]:
    """Rows of a measured-latency CSV (`model,board,ms`), validated; model paths made absolute."""
    from firmware_export.files import read_user_text

    path = Path(path)
    text = read_user_text(path, "measured-latency file", "a CSV with the columns model,board,ms")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != list(COLUMNS):
        raise ConfigError(f"{path}: the header must be exactly 'model,board,ms', got {reader.fieldnames!r}")
    rows = []
    for n, r in enumerate(reader, start=2):
        model, board, ms = (str(r.get(c) or "").strip() for c in COLUMNS)
        try:
            value = float(ms)
        except ValueError:
            raise ConfigError(f"{path} line {n}: ms must be a number, got {ms!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{path} line {n}: ms must be a positive number, got {ms!r}")
        if not model or not board:
            raise ConfigError(f"{path} line {n}: model and board must not be empty")
        model_path = Path(model) if Path(model).is_absolute() else path.parent / model
        rows.append(MeasuredRow(str(model_path), board.lower(), value))
    if not rows:
        raise ConfigError(f"{path}: no measured rows; add lines 'model.tflite,board-name,12.5'")
    return rows


def _estimate(rows: list[MeasuredRow], boards_file: str | Path | None) -> None:
    from firmware_export.costmodel import model_cost
    from firmware_export.estimate import latency_ms, load_latency_model
    from firmware_export.tflite_model import read_tflite

    profiles = load_boards(boards_file)
    lm = load_latency_model()
    costs: dict[str, Any] = {}
    for r in rows:
        if r.board not in profiles:
            raise BoardError(f"unknown board {r.board!r} in the measured CSV; define it in the boards file")
        if r.model not in costs:
            costs[r.model] = model_cost(read_tflite(r.model))
        r.estimated_ms = latency_ms(costs[r.model], profiles[r.board], lm)[0]


def fit_board(board: str, rows: list[MeasuredRow]) -> BoardCalibration:
    """One board's factor (geometric mean of measured/estimated) and range (spread of its rows)."""
    logs = [math.log(r.measured_ms / r.estimated_ms) for r in rows]
    mean = sum(logs) / len(logs)
    if len(rows) == 1:
        u = SINGLE_ROW_UNCERTAINTY
    else:
        u = max(MIN_UNCERTAINTY, math.exp(max(abs(x - mean) for x in logs)) - 1)
    return BoardCalibration(board, math.exp(mean), round(u, 4), rows)


def calibrate_boards(measured_csv: str | Path, boards_file: str | Path, force: bool = False) -> CalibrationResult:
    """Fit a latency factor per board from the user's measurements and save it beside `boards_file`.

    An existing calibration is replaced only with `force` (checked before anything is read); the
    calibration's path is never one of the inputs (the CSV, the boards file, a measured model)."""
    if boards_file is None:
        raise ConfigError("--calibrate needs --boards-file: the calibration is saved beside it")
    path = calibration_path(boards_file)
    check_writable(path, force, [measured_csv, boards_file])
    rows = read_measured(measured_csv)
    _estimate(rows, boards_file)
    by_board: dict[str, list[MeasuredRow]] = {}
    for r in rows:
        by_board.setdefault(r.board, []).append(r)
    fitted = [fit_board(b, rs) for b, rs in sorted(by_board.items())]
    lines = [(f"# Latency calibration of the boards in {Path(boards_file).name}, written by `tinyprune fit --calibrate "
              f"{Path(measured_csv).name}`."),
             ("# factor = measured / shipped estimate (geometric mean of the rows); "
              "the board's range becomes x/÷ (1 + uncertainty)."), ""]
    for b in fitted:
        lines += [f'[boards."{b.board}"]', f"factor = {b.factor:.6g}", f"uncertainty = {b.uncertainty:.4g}",
                  f"rows = {len(b.rows)}", ""]
    write_text(path, "\n".join(lines), force=force, inputs=[measured_csv, boards_file, *(r.model for r in rows)])
    return CalibrationResult(path, fitted)


def load_user_calibration(boards_file: str | Path | None) -> dict[str, Any]:
    """Per-board latency factors saved beside `boards_file` (empty when there are none)."""
    from firmware_export.estimate import Factor

    if boards_file is None:
        return {}
    path = calibration_path(boards_file)
    if not path.is_file():
        return {}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        return {name: Factor(float(v["factor"]), 1.0, float(v["uncertainty"]), f"user calibration ({path.name})")
                for name, v in doc.get("boards", {}).items()}
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise ConfigError(f"{path}: not a valid calibration file; re-create it with tinyprune fit --calibrate") from None
