"""Issue 16: latency calibrated on every core (per op class), ranges that hold the measurements,
and `fit --calibrate` with a user's own measured latencies."""

from __future__ import annotations

import csv
import json
import math

import pytest

from firmware_export.boards import CORES, Board
from firmware_export.costmodel import model_cost
from firmware_export.estimate import latency_ms, load_latency_model
from firmware_export.latency_user import calibration_path
from firmware_export.tflite_model import read_tflite
from tests.helpers import REFERENCE, run_cli, stderr_one_line

LATENCY_CSV = REFERENCE / "mlperf_tiny_latency.csv"
MODELS = {"kws": "kws_ref_model.tflite", "ic": "pretrainedResnet_quant.tflite",
          "vww": "vww_96_int8.tflite", "ad": "ad01_int8.tflite"}
TFLM_STACKS = ("TFLM + CMSIS-NN", "TFLM v2.3.1 + CMSIS-NN")


def _rows():
    if not LATENCY_CSV.is_file():
        pytest.skip(f"{LATENCY_CSV} not found")
    lines = [ln for ln in LATENCY_CSV.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return list(csv.DictReader(lines))


def test_every_board_core_has_per_op_class_costs():
    lm = load_latency_model()
    for core in CORES:
        c = lm.cores[core]
        assert set(c.cycles_per_mac) == {"conv", "depthwise", "fc"} and c.uncertainty > 0, core
        assert c.basis, core
    cpm = {core: lm.cores[core].cycles_per_mac["conv"] for core in CORES}
    assert cpm["cortex-m85"] < cpm["cortex-m55"] < cpm["cortex-m7"] < cpm["cortex-m4f"] < cpm["cortex-m0plus"]
    assert cpm["cortex-m4f"] < cpm["cortex-m3"] < cpm["cortex-m0plus"]
    # op classes are priced differently (depthwise reuses little data)
    for core in CORES:
        m = lm.cores[core].cycles_per_mac
        assert m["depthwise"] > m["conv"], core
    # uncalibrated Helium cores get a range that spans at least 3x either way
    assert lm.cores["cortex-m85"].uncertainty >= 2.0 and lm.cores["cortex-m55"].uncertainty >= 2.0


def test_tflm_rows_inside_the_stated_range(mlperf_dir):
    """The shipped constants on every TFLM + CMSIS-NN row of the latency file: within 2x, and the
    measured value inside the stated range (the legacy v0.5 build with its fitted factor)."""
    lm = load_latency_model()
    costs = {k: model_cost(read_tflite(mlperf_dir / f)) for k, f in MODELS.items()}
    rows = [r for r in _rows() if r["stack"] in TFLM_STACKS and r["accelerator"] == "none"]
    assert len(rows) == 8
    errors = []
    for r in rows:
        board = Board(r["system"].lower(), r["core"], float(r["clock_mhz"]), 1, 1)
        point, low, high = (v * lm.legacy_stacks.get(r["stack"], 1.0) for v in latency_ms(costs[r["benchmark"]], board, lm))
        measured = float(r["latency_ms"])
        assert low <= measured <= high, (r["system"], r["benchmark"], point, measured)
        assert 0.5 < point / measured < 2.0, (r["system"], r["benchmark"])
        errors.append(abs(point / measured - 1))
    assert sorted(errors)[len(errors) // 2] < 0.20


def test_other_engines_scale_across_cores(mlperf_dir):
    """Rows of other engines on M0+, M7 and M33 (through the engines' fitted factors) lie inside the
    range of their core for at least 90% of them."""
    lm = load_latency_model()
    costs = {k: model_cost(read_tflite(mlperf_dir / f)) for k, f in MODELS.items()}
    inside = total = 0
    for r in _rows():
        if r["accelerator"] != "none" or r["stack"] not in lm.engines or r["benchmark"] not in MODELS:
            continue
        try:
            measured = float(r["latency_ms"])
        except ValueError:
            continue
        eng, core = lm.engines[r["stack"]], lm.cores[r["core"]]
        cycles = sum(op.macs * core.cycles_per_mac[op.family] * eng[op.family] for op in costs[r["benchmark"]].ops
                     if op.family != "elementwise")
        cycles += sum((op.elements * lm.cycles_per_element + lm.cycles_per_op) * core.scalar_factor * eng["conv"]
                      for op in costs[r["benchmark"]].ops)
        point = cycles / (float(r["clock_mhz"]) * 1e3)
        u = core.uncertainty
        total += 1
        inside += point / (1 + u) <= measured <= point * (1 + u)
    assert total > 150 and inside / total >= 0.9, (inside, total)


BOARDS = """
[[board]]
name = "my-m4"
core = "cortex-m4f"
clock_mhz = 80
flash_kb = 1024
sram_kb = 256
source = "test board"
"""


def test_fit_calibrate_refits_and_saves_beside_the_boards_file(mlperf_dir, tmp_path):
    boards = tmp_path / "my_boards.toml"
    boards.write_text(BOARDS)
    lm = load_latency_model()
    board = Board("my-m4", "cortex-m4f", 80, 1024, 256)
    est = {k: latency_ms(model_cost(read_tflite(mlperf_dir / MODELS[k])), board, lm)[0] for k in ("kws", "vww")}
    # the user's board is 1.5x and 1.7x slower than the shipped estimate
    (tmp_path / "kws.tflite").write_bytes((mlperf_dir / MODELS["kws"]).read_bytes())
    measured = tmp_path / "measured.csv"
    measured.write_text(f"model,board,ms\nkws.tflite,my-m4,{est['kws'] * 1.5}\n"
                        f"{mlperf_dir / MODELS['vww']},my-m4,{est['vww'] * 1.7}\n")
    p = run_cli(["fit", "--calibrate", str(measured), "--boards-file", str(boards), "--json"])
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    saved = calibration_path(boards)
    assert saved.parent == boards.parent and saved.is_file() and out["path"] == str(saved)
    b = out["boards"][0]
    assert b["board"] == "my-m4" and b["factor"] == pytest.approx(math.sqrt(1.5 * 1.7), rel=1e-6)
    assert b["uncertainty"] == pytest.approx(max(0.10, math.sqrt(1.7 / 1.5) - 1), rel=1e-3)
    # a later fit with that boards file uses the calibration
    f = run_cli(["fit", str(mlperf_dir / MODELS["kws"]), "--boards-file", str(boards), "--json"])
    assert f.returncode in (0, 1), f.stderr
    r = json.loads(f.stdout)["boards"][0]
    assert r["latency_ms"] == pytest.approx(est["kws"] * b["factor"], rel=1e-5)
    assert r["latency_ms_low"] <= est["kws"] * 1.5 <= r["latency_ms_high"]
    assert r["latency_basis"] == f"user calibration ({saved.name})"  # the JSON says which figure it is
    table = run_cli(["fit", str(mlperf_dir / MODELS["kws"]), "--boards-file", str(boards)])
    assert f"from user calibration ({saved.name})" in " ".join(table.stdout.split())
    # calibrating again replaces the saved calibration only with --force
    before = saved.read_bytes()
    measured.write_text(f"model,board,ms\nkws.tflite,my-m4,{est['kws'] * 3}\n")
    again = run_cli(["fit", "--calibrate", str(measured), "--boards-file", str(boards)])
    assert again.returncode == 2 and "--force" in stderr_one_line(again) and saved.read_bytes() == before
    forced = run_cli(["fit", "--calibrate", str(measured), "--boards-file", str(boards), "--force", "--json"])
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["boards"][0]["factor"] == pytest.approx(3.0, rel=1e-6)
    # the calibration can never be written over one of its own inputs, not even with --force
    forced_bytes = saved.read_bytes()
    loop = run_cli(["fit", "--calibrate", str(saved), "--boards-file", str(boards), "--force"])
    assert loop.returncode == 2 and "input" in stderr_one_line(loop) and saved.read_bytes() == forced_bytes


def test_fit_calibrate_bad_input(tmp_path, mlperf_dir):
    boards = tmp_path / "b.toml"
    boards.write_text(BOARDS)
    measured = tmp_path / "m.csv"
    measured.write_text(f"model,board,ms\n{mlperf_dir / MODELS['kws']},my-m4,12\n")
    no_boards = run_cli(["fit", "--calibrate", str(measured)])
    assert no_boards.returncode == 2 and "--boards-file" in stderr_one_line(no_boards)
    bad = tmp_path / "bad.csv"
    bad.write_text("model;board;ms\nx,y,1\n")
    p = run_cli(["fit", "--calibrate", str(bad), "--boards-file", str(boards)])
    assert p.returncode == 2 and "model,board,ms" in stderr_one_line(p)
    neg = tmp_path / "neg.csv"
    neg.write_text(f"model,board,ms\n{mlperf_dir / MODELS['kws']},my-m4,-3\n")
    p = run_cli(["fit", "--calibrate", str(neg), "--boards-file", str(boards)])
    assert p.returncode == 2 and "positive" in stderr_one_line(p)
    unknown = tmp_path / "u.csv"
    unknown.write_text(f"model,board,ms\n{mlperf_dir / MODELS['kws']},nope-board,3\n")
    p = run_cli(["fit", "--calibrate", str(unknown), "--boards-file", str(boards)])
    assert p.returncode == 2 and "nope-board" in stderr_one_line(p)
    assert not calibration_path(boards).exists()


def test_cycles_follow_the_qemu_instruction_counts(demo_int8, mlperf_dir):
    """Instructions per Invoke measured in QEMU (tflm_cortex_m_sizes.md) for digits (not a
    calibration model), vww and kws: estimated cycles / instructions (CPI) must be plausible for
    an in-order Cortex-M pipeline and about the same for the three models on one core."""
    import re

    sizes = REFERENCE / "tflm_cortex_m_sizes.md"
    if not sizes.is_file():
        pytest.skip(f"{sizes} not found")
    text = sizes.read_text()
    counts = {}
    for key, label in (("digits", "digits CNN"), ("vww", "vww_96_int8"), ("kws", "kws_ref_model")):
        m4, m33 = re.search(rf"\| {label} \| ([\d.]+) M \| ([\d.]+) M \|", text).groups()
        counts[key] = (float(m4) * 1e6, float(m33) * 1e6)
    paths = {"digits": demo_int8, "vww": mlperf_dir / MODELS["vww"], "kws": mlperf_dir / MODELS["kws"]}
    lm = load_latency_model()
    from firmware_export.estimate import latency_cycles

    for j, core in enumerate(("cortex-m4f", "cortex-m33")):
        cpi = [sum(latency_cycles(model_cost(read_tflite(p)), core, "cmsis-nn", lm)) / counts[k][j]
               for k, p in paths.items()]
        assert all(0.8 < c < 2.0 for c in cpi), (core, cpi)
        assert max(cpi) / min(cpi) < 1.25, (core, cpi)
