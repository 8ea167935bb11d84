"""`tinyprune fit`: RAM/flash/latency estimates, the CI-gate exit codes, and bad input (issue 7)."""

from __future__ import annotations

import csv
import json
import tempfile
import tomllib
from pathlib import Path

import pytest

from tests.helpers import REFERENCE, cli_in_fresh_interpreter, run_cli, stderr_one_line
from firmware_export import tflm
from firmware_export.boards import Board, load_boards, select_boards
from firmware_export.cexport import export_c
from firmware_export.costmodel import model_cost
from firmware_export.arena_bound import arena_bound
from firmware_export.estimate import RUNTIME_SIZES_FILE, fit_model, latency_ms
from firmware_export.flash_model import FLASH_PARTS_FILE
from firmware_export.tflite_model import read_tflite

MLPERF_INT8 = ["ad01_int8.tflite", "kws_ref_model.tflite", "pretrainedResnet_quant.tflite",
               "str_ww_ref_model.tflite", "vww_96_int8.tflite"]
CALIBRATION_CSV = REFERENCE / "latency_calibration.csv"
CALIBRATION_MODELS = {"kws": "kws_ref_model.tflite", "ic": "pretrainedResnet_quant.tflite",
                      "vww": "vww_96_int8.tflite", "ad": "ad01_int8.tflite"}

TINY_BOARD = """
[[board]]
name = "tiny-m0"
core = "cortex-m0plus"
clock_mhz = 32
flash_kb = 16
sram_kb = 4
source = "a made-up small board for the test"
"""


def documented_overhead(op_count: int) -> int:
    """RAM outside the arena, computed here straight from runtime_sizes.toml's [ram] table."""
    ram = tomllib.loads(RUNTIME_SIZES_FILE.read_text())["ram"]
    return (ram["interpreter_bytes"] + ram["resolver_bytes_fixed"] + ram["resolver_bytes_per_op"] * op_count
            + ram["stack_bytes"])


def check_ram_equals_arena_plus_overhead(path: Path) -> None:
    data = path.read_bytes()
    model = read_tflite(path)
    arena = tflm.measure_arena(data)
    report = fit_model(data, select_boards(load_boards(), None, True))
    assert arena.target_bytes < arena.host_bytes  # the 32-bit adjustment was applied
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_c(data, Path(tmp) / "fw")
    for r in report.results:
        # issue 16: the bound is the per-core upper bound (target + CMSIS-NN scratch + alignment slack)
        bound = arena_bound(model, arena, r.kernels, r.core).bound_bytes
        assert r.arena_bound_bytes == bound >= arena.target_bytes
        # RAM counts the arena the exported firmware allocates (the header's constant), not the bound
        header = exported.mve_arena_bytes if r.core in ("cortex-m55", "cortex-m85") and exported.mve_arena_bytes \
            else exported.arena_bytes
        assert r.arena_bytes == header > bound, r.board
        assert r.ram_bytes == header + documented_overhead(len(model.op_names)), r.board
        assert r.flash_bytes >= r.model_bytes == len(data)


def test_ram_is_tflm_arena_plus_overhead_digits(demo_int8):
    check_ram_equals_arena_plus_overhead(demo_int8)


@pytest.mark.parametrize("name", MLPERF_INT8)
def test_ram_is_tflm_arena_plus_overhead_mlperf(mlperf_dir, name):
    check_ram_equals_arena_plus_overhead(mlperf_dir / name)


def test_flash_adds_runtime_code_per_kernel_library(mlperf_dir):
    data = (mlperf_dir / "vww_96_int8.tflite").read_bytes()
    cmsis = Board("a", "cortex-m4f", 64, 1024, 256)
    ref = Board("b", "cortex-m4f", 64, 1024, 256, kernels="reference")
    a, b = fit_model(data, [cmsis, ref], arena=1000).results
    parts = tomllib.loads(FLASH_PARTS_FILE.read_text())
    assert a.flash_bytes == len(data) + a.runtime_code_bytes
    assert a.runtime_code_bytes > b.runtime_code_bytes > parts["framework"]["base_bytes"]
    assert a.flash_bytes_low < a.flash_bytes < a.flash_bytes_high
    # same work, reference kernels are slower by the documented factor (within rounding)
    assert 3 < b.latency_ms / a.latency_ms < 5
    assert a.latency_ms_low < a.latency_ms < a.latency_ms_high


def test_macs_match_the_calibration_file(mlperf_dir):
    if not CALIBRATION_CSV.is_file():
        pytest.skip("latency_calibration.csv not found")
    rows = csv.DictReader(ln for ln in CALIBRATION_CSV.read_text().splitlines() if not ln.startswith("#"))
    for row in rows:
        cost = model_cost(read_tflite(mlperf_dir / CALIBRATION_MODELS[row["benchmark"]]))
        assert cost.total_macs == int(row["macs"]), row["benchmark"]


def test_latency_within_2x_of_every_calibration_row(mlperf_dir):
    if not CALIBRATION_CSV.is_file():
        pytest.skip("latency_calibration.csv not found")
    from firmware_export.estimate import load_latency_model

    lm = load_latency_model()
    rows = csv.DictReader(ln for ln in CALIBRATION_CSV.read_text().splitlines() if not ln.startswith("#"))
    for row in rows:
        cost = model_cost(read_tflite(mlperf_dir / CALIBRATION_MODELS[row["benchmark"]]))
        board = Board(row["board"].lower(), row["core"], float(row["clock_mhz"]), 1, 1)
        est = latency_ms(cost, board, lm)[0] * lm.legacy_stacks.get(row["stack"], 1.0)
        ratio = est / float(row["latency_ms"])
        assert 0.5 < ratio < 2.0, (row["benchmark"], row["board"], ratio)


def test_layers_mark_the_peak_memory_op(mlperf_dir):
    data = (mlperf_dir / "pretrainedResnet_quant.tflite").read_bytes()
    report = fit_model(data, select_boards(load_boards(), ["ek-ra6m4"], False))
    peaks = [layer for layer in report.layers if layer.peak]
    assert len(peaks) == 1 and peaks[0].live_bytes == max(layer.live_bytes for layer in report.layers)
    assert len(report.layers) == report.op_count
    total = sum(layer.latency_ms["ek-ra6m4"] for layer in report.layers)
    assert total == pytest.approx(report.results[0].latency_ms)
    d = json.loads(report.to_json(layers=True))
    assert sum(layer["peak"] for layer in d["layers"]) == 1


def test_cli_json_fields_and_exit_0(demo_int8):
    proc = run_cli(["fit", str(demo_int8), "--board", "nucleo-l4r5zi", "--board", "rpi-pico", "--json"])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [b["board"] for b in out["boards"]] == ["nucleo-l4r5zi", "rpi-pico"]
    for b in out["boards"]:
        for key in ("board", "model_bytes", "flash_bytes", "arena_bytes", "ram_bytes", "latency_ms",
                    "latency_ms_low", "latency_ms_high", "fits"):
            assert key in b
        assert b["fits"] is True and b["model_bytes"] == demo_int8.stat().st_size
        assert b["latency_ms_low"] < b["latency_ms"] < b["latency_ms_high"]


def test_fit_file_is_what_the_cli_prints(demo_int8, tmp_path):
    """The library call gives the CLI's figures: default boards, and a boards file's own boards."""
    from firmware_export.estimate import fit_file

    boards = tmp_path / "mine.toml"
    boards.write_text('[[board]]\nname = "my-m4"\ncore = "cortex-m4f"\nclock_mhz = 80\nflash_kb = 1024\n'
                      'sram_kb = 256\n')
    for extra, path in (([], None), (["--boards-file", str(boards)], boards)):
        cli = json.loads(run_cli(["fit", str(demo_int8), "--json", *extra]).stdout)
        assert fit_file(demo_int8, boards_file=path).to_dict() == cli
    assert [b["board"] for b in cli["boards"]] == ["my-m4"]  # the boards file's boards, not the default set


def test_too_large_for_small_board_exits_1_and_names_overshoot(demo_int8, tmp_path):
    boards = tmp_path / "tiny.toml"
    boards.write_text(TINY_BOARD)
    proc = run_cli(["fit", str(demo_int8), "--boards-file", str(boards)])  # the file's boards by default
    assert proc.returncode == 1, proc.stderr
    assert "tiny-m0" in proc.stdout and "flash over by" in proc.stdout and "RAM over by" in proc.stdout
    js = run_cli(["fit", str(demo_int8), "--boards-file", str(boards), "--board", "tiny-m0",
                  "--board", "nucleo-l4r5zi", "--json"])
    assert js.returncode == 1
    tiny, big = json.loads(js.stdout)["boards"]
    assert tiny["fits"] is False and big["fits"] is True
    over = tiny["flash_bytes"] - tiny["flash_available"]
    assert over > 0 and f"flash over by {over / 1024:,.1f} KB" in tiny["overshoot"]


def test_cli_layers_table(demo_int8):
    proc = run_cli(["fit", str(demo_int8), "--board", "ek-ra6m4", "--layers"])
    assert proc.returncode == 0, proc.stderr
    assert "per-op breakdown" in proc.stdout and "CONV_2D" in proc.stdout and "*" in proc.stdout


def test_fit_cli_never_imports_tensorflow(demo_int8, tmp_path):
    boards = tmp_path / "tiny.toml"
    boards.write_text(TINY_BOARD)
    codes, heavy, _ = cli_in_fresh_interpreter(["fit", demo_int8, "--all", "--json", "--layers"],
                                               ["fit", demo_int8, "--boards-file", boards, "--json"], ["boards"])
    assert codes == [0, 1, 0] and heavy == []


def test_bad_input_unknown_board(demo_int8):
    proc = run_cli(["fit", str(demo_int8), "--board", "nano33ble"])
    assert proc.returncode == 2
    assert "nearest: arduino-nano-33-ble" in stderr_one_line(proc)


def test_bad_input_malformed_boards_file(demo_int8, tmp_path):
    boards = tmp_path / "bad.toml"
    boards.write_text(TINY_BOARD.replace('core = "cortex-m0plus"', 'core = "m99"'))
    proc = run_cli(["fit", str(demo_int8), "--boards-file", str(boards)])
    assert proc.returncode == 2
    line = stderr_one_line(proc)
    assert "board 'tiny-m0'" in line and "'core'" in line


def test_bad_input_not_a_tflite(tmp_path):
    text = tmp_path / "model.tflite"
    text.write_text("this is not a flatbuffer\n")
    proc = run_cli(["fit", str(text)])
    assert proc.returncode == 2
    assert "not a .tflite" in stderr_one_line(proc)
    missing = run_cli(["fit", str(tmp_path / "nope.tflite")])
    assert missing.returncode == 2 and "no such file" in stderr_one_line(missing)


def _with_unsupported_op(data: bytes) -> bytes:
    """The same flatbuffer with every operator code swapped for one TFLM has no kernel for."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    for code in m.operatorCodes:
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.NON_MAX_SUPPRESSION_V4
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_bad_input_model_tflm_cannot_allocate(demo_int8, tmp_path):
    bad = tmp_path / "unsupported.tflite"
    bad.write_bytes(_with_unsupported_op(demo_int8.read_bytes()))
    assert read_tflite(bad).op_names == {"NON_MAX_SUPPRESSION_V4"}  # still a valid flatbuffer
    proc = run_cli(["fit", str(bad), "--board", "rpi-pico"])
    assert proc.returncode == 2
    assert "TFLite Micro cannot load this model" in stderr_one_line(proc)
