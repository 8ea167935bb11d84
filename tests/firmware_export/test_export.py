"""Firmware export and inspect: C source that compiles and round-trips, exact op resolver,
arena read right, MLPerf Tiny models, and bad input through the CLI (exit 2, nothing written)."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT, cli_in_fresh_interpreter, run_cli, stderr_one_line
from firmware_export import tflm
from firmware_export.cexport import export_c
from firmware_export.ops import op_table
from firmware_export.tflite_model import parse_tflite, read_tflite

LABELS = [f"digit_{i}" for i in range(10)]


@pytest.fixture(scope="module")
def digits_export(demo_int8, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "fw"
    return export_c(demo_int8, out, name="digits", labels=LABELS)


@pytest.fixture(scope="module")
def float_models(tmp_path_factory, demo_model_path):
    """A float .tflite of the demo (TFLM runs it) and a float model with TOPK_V2 (TFLM lacks it)."""
    from tinyprune.load.model import load_model
    from tinyprune.tfsetup import tf

    d = tmp_path_factory.mktemp("float_models")
    conv = tf.lite.TFLiteConverter.from_keras_model(load_model(demo_model_path))
    (d / "digits_float.tflite").write_bytes(conv.convert())

    class TopK(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
        def __call__(self, x):
            return tf.math.top_k(x, k=2).values

    m = TopK()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([m.__call__.get_concrete_function()], m)
    (d / "topk.tflite").write_bytes(conv.convert())
    return d


def _resolver_calls(header: str) -> list[str]:
    return re.findall(r"resolver\.(Add\w+)\((?:tflite::Register_\w+\(\))?\);", header)


def _constant(header: str, name: str) -> int:
    return int(re.search(rf"constexpr unsigned int {name} = (\d+);", header).group(1))


def _expected_methods(data: bytes) -> set[str]:
    """Resolver methods for the ops read independently with the flatbuffer reader."""
    builtin, custom = op_table()
    m = parse_tflite(data)
    return {(custom if op.custom else builtin)[op.name] for op in m.operators}


# ---------------------------------------------------------------- generated C source

@pytest.mark.skipif(shutil.which("g++") is None, reason="no host C++ compiler")
def test_model_data_compiles_and_writes_back_identical_bytes(digits_export, demo_int8, tmp_path):
    fw = digits_export.out_dir
    prog = tmp_path / "dump.cc"
    prog.write_text(
        '#include <cstdint>\n#include <cstdio>\n'
        '#include "digits_model_data.h"\n#include "digits_model_settings.h"\n'
        f"static_assert(digits_tensor_arena_size == {digits_export.arena_bytes}, \"arena\");\n"
        "static_assert(digits_input_size == 64 && digits_output_size == 10, \"io\");\n"
        "int main(int argc, char** argv) {\n"
        "  if (argc < 2) return 2;\n"
        "  if (reinterpret_cast<uintptr_t>(digits_model_data) % 16 != 0) return 3;\n"
        "  FILE* f = std::fopen(argv[1], \"wb\");\n"
        "  if (!f) return 4;\n"
        "  std::fwrite(digits_model_data, 1, digits_model_data_len, f);\n"
        "  std::fclose(f);\n"
        "  std::printf(\"%s\\n\", digits_labels[9]);\n"
        "  return 0;\n}\n")
    exe = tmp_path / "dump"
    build = subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{fw}", str(prog),
                            str(fw / "digits_model_data.cc"), "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    back = tmp_path / "back.tflite"
    run = subprocess.run([str(exe), str(back)], capture_output=True, text=True)
    assert run.returncode == 0, f"exit {run.returncode} (3 = array not 16-byte aligned)"
    assert run.stdout.strip() == "digit_9"
    assert back.read_bytes() == demo_int8.read_bytes()


def test_model_data_source_is_const_aligned_with_length(digits_export, demo_int8):
    cc = (digits_export.out_dir / "digits_model_data.cc").read_text()
    h = (digits_export.out_dir / "digits_model_data.h").read_text()
    assert "alignas(16) const unsigned char digits_model_data[] = {" in cc
    assert _constant(h, "digits_model_data_len") == demo_int8.stat().st_size


def test_settings_header_describes_io(digits_export, demo_int8):
    s = (digits_export.out_dir / "digits_model_settings.h").read_text()
    m = read_tflite(demo_int8)
    inp, out = m.input_tensors()[0], m.output_tensors()[0]
    assert "typedef int8_t digits_input_t;" in s
    assert f"constexpr int digits_input_zero_point = {inp.zero_point[0]};" in s
    assert f"constexpr int digits_output_zero_point = {out.zero_point[0]};" in s
    scale = float(re.search(r"digits_input_scale = ([0-9.e-]+)f", s).group(1))
    assert scale == pytest.approx(inp.scale[0], rel=1e-7)
    assert "constexpr int digits_input_shape[4] = {1, 8, 8, 1};" in s
    assert '"digit_0"' in s and "digits_num_labels = 10" in s


def test_op_resolver_lists_exactly_the_flatbuffer_ops(digits_export, demo_int8):
    h = (digits_export.out_dir / "digits_op_resolver.h").read_text()
    calls = _resolver_calls(h)
    assert len(calls) == len(set(calls))
    assert set(calls) == _expected_methods(demo_int8.read_bytes())
    assert _constant(h, "digits_op_count") == len(calls)
    assert "tflite::MicroMutableOpResolver<digits_op_count> digits_op_resolver()" in h


def test_compressed_model_registers_decode(demo_int8, tmp_path):
    from tflite_micro.tensorflow.lite.micro.compression import spec, spec_builder
    from tflite_micro.tensorflow.lite.micro.compression.compress import compress

    data = demo_int8.read_bytes()
    conv1 = next(t for t in parse_tflite(data).tensors if t.shape == (16, 3, 3, 1))  # 9 values/channel
    b = spec_builder.SpecBuilder()
    b.add_tensor(0, conv1.index).with_lut(4, spec.PerChannel(axis=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a 144-byte tensor grows when compressed; fine for this test
        lut = bytes(compress(data, b.build()))
    r = export_c(lut, tmp_path / "fw", name="lut")
    calls = _resolver_calls((tmp_path / "fw" / "lut_op_resolver.h").read_text())
    assert "AddDecode" in calls and "TFLM_DECODE" in r.ops
    assert set(calls) == _expected_methods(lut)


def test_main_and_cmake_use_the_generated_names(digits_export):
    main = (digits_export.out_dir / "main.cc").read_text()
    cmake = (digits_export.out_dir / "CMakeLists.txt").read_text()
    for needle in ("digits_op_resolver()", "digits_tensor_arena_size", "digits_model_data",
                   "alignas(16) uint8_t tensor_arena", "AllocateTensors", "Invoke", "digits_labels[best]"):
        assert needle in main
    assert "add_executable(digits_main main.cc digits_model_data.cc)" in cmake
    assert "{{" not in main + cmake


# ---------------------------------------------------------------- arena

def test_arena_report_is_read_right(demo_int8):
    data = demo_int8.read_bytes()
    arena = tflm.measure_arena(data)
    assert tflm.fits_in_arena(data, arena.host_bytes)
    smaller = int(arena.host_bytes * 0.95) // tflm.ARENA_ALIGNMENT * tflm.ARENA_ALIGNMENT
    assert not tflm.fits_in_arena(data, smaller)


def test_header_arena_is_bound_plus_documented_margin(digits_export, demo_int8):
    from firmware_export.arena_bound import arena_bound

    m = read_tflite(demo_int8)
    arena = tflm.measure_arena(m.data)
    bound = arena_bound(m, arena, "cmsis-nn", "cortex-m4f").bound_bytes
    # docs/export.md: the 32-bit bound (target + CMSIS-NN scratch + alignment slack) + 5% + 512 B, rounded up to 16
    expected = math.ceil((bound + math.ceil(bound * 0.05) + 512) / 16) * 16
    s = (digits_export.out_dir / "digits_model_settings.h").read_text()
    assert _constant(s, "digits_tensor_arena_size") == expected == digits_export.arena_bytes
    assert digits_export.arena_target_bytes == arena.target_bytes < arena.host_bytes
    assert digits_export.arena_bound_bytes == bound > arena.target_bytes


@pytest.mark.shared_data
def test_mlperf_tiny_int8_models_export_with_arena_from_the_bound(mlperf_dir, tmp_path):
    models = sorted(mlperf_dir.glob("*.tflite"))
    assert models
    for path in models:
        m = read_tflite(path)
        if m.input_tensors()[0].dtype != "INT8":
            continue
        r = export_c(path, tmp_path / path.stem, name="m")
        measured = tflm.measure_arena(m.data).host_bytes
        # issue 16: the constant is the 32-bit bound (with CMSIS-NN scratch) + margin; it was within
        # 10% of the host arena before scratch buffers were counted, now within 30% (str_ww: +25%)
        assert r.arena_bound_bytes >= r.arena_target_bytes, path.name
        assert measured * 0.95 <= r.arena_bytes <= 1.30 * measured, (path.name, r.arena_bytes, measured)
        smaller = int(measured * 0.95) // tflm.ARENA_ALIGNMENT * tflm.ARENA_ALIGNMENT
        assert tflm.fits_in_arena(m.data, measured) and not tflm.fits_in_arena(m.data, smaller), path.name
        calls = _resolver_calls((tmp_path / path.stem / "m_op_resolver.h").read_text())
        assert set(calls) == _expected_methods(m.data), path.name


# ---------------------------------------------------------------- CLI

def test_cli_export_arduino_json(demo_int8, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    out = tmp_path / "ard"
    p = run_cli(["export", str(demo_int8), "-o", str(out), "--name", "digits", "--arduino",
                 "--labels", str(labels), "--json"])
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert {"library.properties", "src/digits_model_data.cc", "src/digits_op_resolver.h",
            "examples/digits_inference/digits_inference.ino", "main.cc", "CMakeLists.txt"} <= set(r["files"])
    assert (out / "src" / "digits_model_settings.h").is_file()
    assert "name=digits_tflm_model" in (out / "library.properties").read_text()
    # issue 16: the margin sits on the 32-bit bound (target + CMSIS-NN scratch + alignment slack)
    assert r["arena_bytes"] - r["arena_bound_bytes"] == r["margin_bytes"] > 0
    assert r["arena_bound_bytes"] > r["arena_target_bytes"]


def test_export_and_inspect_do_not_import_tensorflow(demo_int8, tmp_path):
    codes, heavy, _ = cli_in_fresh_interpreter(["export", demo_int8, "-o", tmp_path / "fw", "--json"],
                                               ["inspect", demo_int8, "--json"])
    assert codes == [0, 0] and heavy == []
    assert (tmp_path / "fw" / "model_model_data.cc").is_file()


def _bad_inputs(tmp: Path, demo_int8: Path, floats: Path) -> dict[str, tuple[list[str], str]]:
    text = tmp / "notes.tflite"
    text.write_text("this is not a model\n")
    data = demo_int8.read_bytes()
    truncated = tmp / "truncated.tflite"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    wrong_labels = tmp / "three.txt"
    wrong_labels.write_text("a\nb\nc\n")
    no_labels = tmp / "empty.txt"
    no_labels.write_text("\n  \n")
    return {
        "empty labels file": ([str(demo_int8), "--labels", str(no_labels)], "holds no labels"),
        "not a flatbuffer": ([str(text)], "not a .tflite"),
        "truncated": ([str(truncated)], "truncated"),
        "op TFLM lacks": ([str(floats / "topk.tflite")], "TOPK_V2"),
        "float where int8 asked": ([str(floats / "digits_float.tflite"), "--require-int8"], "float model"),
        "label count": ([str(demo_int8), "--labels", str(wrong_labels)], "3 labels"),
        "bad name": ([str(demo_int8), "--name", "9lives"], "C identifier"),
        "missing file": ([str(tmp / "nope.tflite")], "no such file"),
    }


def test_cli_bad_inputs_exit_2_one_line_nothing_written(demo_int8, float_models, tmp_path):
    for case, (args, needle) in _bad_inputs(tmp_path, demo_int8, float_models).items():
        out = tmp_path / f"out_{case.replace(' ', '_')}"
        p = run_cli(["export", *args[:1], "-o", str(out), *args[1:]])
        assert p.returncode == 2, (case, p.stderr)
        line = stderr_one_line(p)
        assert line.startswith("error: ") and needle in line, (case, line)
        assert not out.exists(), case  # (a failure after staging began: test_atomic_output.py)


def test_cli_existing_output_without_force(demo_int8, tmp_path):
    out = tmp_path / "fw"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    p = run_cli(["export", str(demo_int8), "-o", str(out)])
    assert p.returncode == 2
    assert "--force" in stderr_one_line(p)
    assert [f.name for f in out.iterdir()] == ["mine.txt"]
    p = run_cli(["export", str(demo_int8), "-o", str(out), "--force"])
    assert p.returncode == 0, p.stderr
    assert not (out / "mine.txt").exists() and (out / "model_model_data.cc").is_file()


def test_float_model_exports_without_require_int8(float_models, tmp_path):
    r = export_c(float_models / "digits_float.tflite", tmp_path / "fw")
    s = (tmp_path / "fw" / "model_model_settings.h").read_text()
    assert "typedef float model_input_t;" in s and r.arena_bytes > r.arena_target_bytes


# ---------------------------------------------------------------- inspect

def test_inspect_report(demo_int8):
    from firmware_export.inspect import inspect_model

    r = inspect_model(demo_int8)
    m = read_tflite(demo_int8)
    assert r.op_set == sorted(m.op_names) and len(r.ops) == len(m.operators)
    assert r.weight_bytes == m.weight_bytes == sum(o.weight_bytes for o in r.ops)
    conv0 = r.ops[0]
    assert conv0.name == "CONV_2D" and conv0.macs == 8 * 8 * 16 * 3 * 3 * 1  # 8x8x16 outputs, 3x3x1 kernel
    assert r.total_macs == sum(o.macs for o in r.ops) > 0
    assert r.arena_host_bytes == tflm.measure_arena(m.data).host_bytes
    assert len(r.tensors) == len(m.tensors)


def test_inspect_cli_json_and_unsupported(demo_int8, float_models):
    p = run_cli(["inspect", str(demo_int8), "--json"])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["total_macs"] > 0
    p = run_cli(["inspect", str(float_models / "topk.tflite"), "--json"])
    r = json.loads(p.stdout)
    assert r["unsupported_ops"] == ["TOPK_V2"] and r["arena_host_bytes"] is None
    p = run_cli(["inspect", str(ROOT / "README.md")])
    assert p.returncode == 2 and "not a .tflite" in stderr_one_line(p)


def test_parse_of_export_output_matches_numpy(digits_export, demo_int8):
    """The C initializer, parsed back in Python, is the file (guards the formatter itself)."""
    cc = (digits_export.out_dir / "digits_model_data.cc").read_text()
    body = cc[cc.index("{") + 1: cc.rindex("}")]
    values = np.array([int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", body)], dtype=np.uint8)
    assert values.tobytes() == demo_int8.read_bytes()
