"""Hostile and broken .tflite files: the exact cases found on main, built here from the demo model.

Each must end as a typed UserError in the library (one line, exit 2 in the CLI): never a
segfault or abort (TFLM runs in a child process; the validator refuses the rest first), never
a traceback.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from firmware_export.errors import TfliteFormatError, TflmError, UserError
from tests.helpers import run_cli, stderr_one_line
from tests.security.mutate import edit, mutate


@pytest.fixture(scope="module")
def demo(demo_int8) -> bytes:
    return demo_int8.read_bytes()


def _refused(data: bytes, match: str, kind=TfliteFormatError):
    from firmware_export.tflite_model import parse_tflite

    with pytest.raises(kind, match=match):
        parse_tflite(data)


def test_subgraph_input_index_out_of_range(demo):
    bad = edit(demo, lambda m: setattr(m.subgraphs[0], "inputs", np.array([999], np.int32)))
    _refused(bad, "input tensor 999 is out of range")


def test_subgraph_output_index_out_of_range(demo):
    bad = edit(demo, lambda m: setattr(m.subgraphs[0], "outputs", np.array([-5], np.int32)))
    _refused(bad, "output tensor -5 is out of range")


def test_operator_tensor_index_out_of_range(demo):
    def fn(m):
        m.subgraphs[0].operators[0].inputs = np.array([0, 4242, 10], np.int32)
    _refused(edit(demo, fn), "operator 0 input tensor 4242 is out of range")


def test_buffer_index_out_of_range(demo):
    def fn(m):
        m.subgraphs[0].tensors[3].buffer = len(m.buffers) + 100
    _refused(edit(demo, fn), "names buffer")


def test_opcode_index_out_of_range(demo):
    def fn(m):
        m.subgraphs[0].operators[2].opcodeIndex = 77
    _refused(edit(demo, fn), "operator code index 77")


def test_huge_shape_is_refused(demo):
    def fn(m):
        m.subgraphs[0].tensors[12].shape = np.array([1, 65536, 65536, 16], np.int32)
    _refused(edit(demo, fn), "would take")


def test_rank_64_is_refused(demo):
    def fn(m):
        m.subgraphs[0].tensors[12].shape = np.ones(64, np.int32)
    _refused(edit(demo, fn), "rank 64", TflmError)


@pytest.mark.parametrize("dim", [-1, -(2**31), 2**31 - 1])
def test_negative_or_2_31_input_dimension(demo, dim):
    def fn(m):
        m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]].shape = np.array([1, dim, 8, 1], np.int32)
    _refused(edit(demo, fn), "negative dimension|would take")


def test_subgraph_without_inputs(demo):
    bad = edit(demo, lambda m: setattr(m.subgraphs[0], "inputs", np.array([], np.int32)))
    _refused(bad, "has no input tensor")


@pytest.mark.parametrize("extra_mb", [215, 300])
def test_valid_model_with_hundreds_of_mb_appended(demo, tmp_path, extra_mb):
    from firmware_export.tflite_model import read_tflite

    path = tmp_path / "big.tflite"
    path.write_bytes(demo)
    with path.open("r+b") as f:  # a sparse file: no 300 MB written to disk
        f.truncate(len(demo) + extra_mb * (1 << 20))
    with pytest.raises(TfliteFormatError, match="MiB tinyprune accepts"):
        read_tflite(path)
    proc = run_cli(["fit", str(path)], timeout=120)
    assert proc.returncode == 2 and "MiB" in stderr_one_line(proc)


def test_truncations_and_bit_flips_never_traceback(demo, tmp_path):
    """Seeded flips and cuts (the IndexError / UnicodeDecodeError cases) through the reader."""
    from firmware_export.tflite_model import parse_tflite

    rng = random.Random(13)
    for i in range(120):
        b = bytearray(demo)
        if i % 3 == 0:
            b = b[: rng.randrange(len(b))]
        else:
            for _ in range(rng.randint(1, 6)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        try:
            parse_tflite(bytes(b))
        except UserError:
            pass


def _degenerate_softmax(demo: bytes) -> bytes:
    def fn(m):
        sg = m.subgraphs[0]
        op = next(o for o in sg.operators if m.operatorCodes[o.opcodeIndex].deprecatedBuiltinCode == 25)
        sg.tensors[op.inputs[0]].quantization.scale = np.array([1e-12], np.float32)
    return edit(demo, fn)


def test_degenerate_softmax_scale_abort_is_one_line(demo, tmp_path):
    """TFLM aborts in the softmax Prepare: a TflmError naming the op, the caller alive."""
    from firmware_export import tflm
    from firmware_export.cexport import export_c
    from firmware_export.inspect import inspect_model

    bad = _degenerate_softmax(demo)
    with pytest.raises(TflmError, match=r"TFLM aborted while preparing op \d+ SOFTMAX"):
        tflm.measure_arena(bad)
    with pytest.raises(TflmError, match="aborted"):
        export_c(bad, tmp_path / "out")
    with pytest.raises(TflmError, match="aborted"):
        inspect_model(bad)
    assert inspect_model(bad, measure=False).arena_host_bytes is None  # the structure can still be shown
    path = tmp_path / "softmax.tflite"
    path.write_bytes(bad)
    for args in (["fit", str(path)], ["export", str(path), "-o", str(tmp_path / "cli")], ["inspect", str(path)]):
        proc = run_cli(args, timeout=300)
        assert proc.returncode == 2, proc.stderr
        assert "aborted while preparing op" in stderr_one_line(proc)


@pytest.mark.slow
def test_untrained_mobilenetv2_int8_abort(tmp_path):
    """The exact case: keras.applications MobileNetV2 (96x96, alpha 0.35, weights=None), int8."""
    from firmware_export import tflm
    from tinyprune.quantize.int8 import quantize_int8
    from tinyprune.tfsetup import keras

    model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10)
    x = np.random.default_rng(0).random((4, 96, 96, 3), dtype=np.float32)
    path = tmp_path / "mnv2.tflite"
    path.write_bytes(quantize_int8(model, x, num_calibration=4))
    with pytest.raises(TflmError, match=r"TFLM aborted while preparing op \d+ SOFTMAX"):
        tflm.measure_arena(path.read_bytes())
    for cmd in ("fit", "inspect"):
        proc = run_cli([cmd, str(path)], timeout=300)
        assert proc.returncode in (0, 2) and proc.returncode >= 0, proc.stderr
        assert "Traceback" not in proc.stderr
        if cmd == "fit":
            assert "SOFTMAX" in stderr_one_line(proc)


def test_cli_mutants_exit_cleanly(demo, tmp_path):
    """A few seeded structural mutants through the real CLI: exit 0/1/2, never a signal or traceback."""
    rng = random.Random(2026)
    seen = set()
    for i in range(6):
        kind, bad = mutate(demo, rng)
        path = tmp_path / f"m{i}.tflite"
        path.write_bytes(bad)
        cmd = (["fit", str(path)], ["inspect", str(path)],
               ["export", str(path), "-o", str(tmp_path / f"e{i}")])[i % 3]
        proc = run_cli(cmd, timeout=300)
        assert proc.returncode in (0, 1, 2), (kind, proc.returncode, proc.stderr[-500:])
        assert "Traceback" not in proc.stderr, (kind, proc.stderr[-2000:])
        if proc.returncode == 2:
            stderr_one_line(proc)
        seen.add(proc.returncode)
    assert 2 in seen


def test_export_output_is_the_input_even_with_force(demo, tmp_path):
    from firmware_export.cexport import export_c
    from firmware_export.errors import OutputExistsError

    path = tmp_path / "M.tflite"
    path.write_bytes(demo)
    proc = run_cli(["export", str(path), "-o", str(path), "--force"], timeout=300)
    assert proc.returncode == 2 and "is the input" in stderr_one_line(proc)
    assert path.read_bytes() == demo
    with pytest.raises(OutputExistsError, match="contains the input"):
        export_c(path, tmp_path, force=True)
    proc = run_cli(["compress", str(path), "-o", str(path), "--force"], timeout=300)
    assert proc.returncode == 2 and path.read_bytes() == demo
