"""TFLM PRUNE compression (bitmask + non-zero values), checked in the real TFLM interpreter.

The sparse models here are made by zeroing the smallest int8 weights of real .tflite files with
the tflite_micro model editor (no TensorFlow): the demo digits CNN, and the MLPerf Tiny
visual-wake-words MobileNet (depthwise filters quantized on the last axis; an older converter's
operator codes) where ../shared/data has it.
"""

from __future__ import annotations

import numpy as np
import pytest


def _sparsify(data: bytes, sparsity: float) -> bytes:
    """Zero the smallest-magnitude `sparsity` of every int8 weight tensor (ndim >= 2)."""
    from firmware_export.compress import read_model

    model = read_model(data)
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.buffer is None or not t.buffer.data or t.array.dtype != np.int8 or t.array.ndim < 2:
                continue
            a = t.array.copy()
            mag = np.abs(a.astype(np.int16))
            a[mag <= np.quantile(mag, sparsity)] = 0
            t.buffer.data = a.tobytes()
    return bytes(model.build())


def test_encode_bit_order_and_values():
    from firmware_export.tflm_prune import encode, header

    a = np.array([[0, 5, 0, 0, 0, 0, 0, -2, 7], [0] * 9], np.int8)
    enc, anc = encode(a, np.zeros(2, np.int64), axis=0)
    # bit 7 of byte 0 is element 0; kept elements 1, 7 and 8
    assert enc == bytes([0b01000001, 0b10000000, 0b00000000])
    assert anc[:16] == header() and list(np.frombuffer(anc[16:], np.int8)) == [5, -2, 7]
    assert header()[0] == 2 and header()[1] == 1 and header()[4] == 1  # PRUNE, DCM v1, PRUNE format v1


def test_encode_compares_with_each_channels_zero_point():
    from firmware_export.tflm_prune import encode

    a = np.array([[3, -1], [3, 4]], np.int8)  # channels on the last axis, zero points 3 and -1
    enc, anc = encode(a, np.array([3, -1]), axis=1)
    assert enc == bytes([0b00010000]) and list(np.frombuffer(anc[16:], np.int8)) == [4]


def test_prune_outputs_bit_identical_on_digits(demo_int8, digits):
    from firmware_export.compress import compress_model
    from firmware_export.tflite_model import parse_tflite
    from firmware_export.tflm import run

    sparse = _sparsify(demo_int8.read_bytes(), 0.8)
    comp = compress_model(sparse, "prune")
    assert "TFLM_DECODE" in parse_tflite(comp.data).op_names
    assert np.array_equal(run(comp.data, digits.x_val), run(sparse, digits.x_val))
    assert comp.compressed_bytes == len(comp.data) < 0.6 * len(sparse)
    assert comp.extra_arena_bytes > 0
    used = [t for t in comp.tensors if t.method == "prune"]
    assert used and all(t.encoded_bytes < 0.35 * t.dense_bytes for t in used)
    assert comp.to_dict()["formats_used"] == ["prune"] and "experimental on Cortex-M" in comp.to_dict()["note"]


def test_auto_takes_the_smaller_format_per_tensor(demo_int8):
    from firmware_export.compress import compress_model, plan

    sparse = _sparsify(demo_int8.read_bytes(), 0.8)
    for p in plan(sparse, "auto", 7):
        options = [b for b in (p.lut_bytes, p.prune_bytes) if b is not None]
        if p.compress:
            assert p.encoded_bytes == min(options)
    # on an 80%-sparse, unclustered model PRUNE is the only format that pays
    assert compress_model(sparse, "auto", 4, measure=False).to_dict()["formats_used"] == ["prune"]


def test_dense_model_is_refused(demo_int8):
    from firmware_export.compress import compress_model, read_model
    from tinyprune.errors import ConfigError

    dense = read_model(demo_int8.read_bytes())
    for t in dense.subgraphs[0].tensors:  # the demo int8 model is 50% sparse: undo that
        if t.buffer is not None and t.buffer.data and t.array.dtype == np.int8 and t.array.ndim >= 2:
            t.buffer.data = np.where(t.array == 0, 1, t.array).astype(np.int8).tobytes()
    with pytest.raises(ConfigError, match="sparse enough"):
        compress_model(bytes(dense.build()), "prune", measure=False)


def test_unknown_method_is_refused(demo_int8):
    from firmware_export.compress import compress_model
    from tinyprune.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown compression"):
        compress_model(demo_int8.read_bytes(), "huffman")


def test_mlperf_vww_depthwise_last_axis_bit_identical(mlperf_dir):
    """Depthwise filters carry per-channel zero points on the last axis: the other decoder path."""
    from firmware_export.compress import compress_model
    from firmware_export.tflm import run

    path = mlperf_dir / "vww_96_int8.tflite"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    sparse = _sparsify(path.read_bytes(), 0.7)
    comp = compress_model(sparse, "prune")
    assert any(t.op == "DEPTHWISE_CONV_2D" and t.method == "prune" and t.axis == len(t.shape) - 1
               for t in comp.tensors)
    x = np.random.default_rng(0).integers(-128, 128, size=(4, 96, 96, 3)).astype(np.int8)
    assert np.array_equal(run(comp.data, x, quantized_input=True), run(sparse, x, quantized_input=True))
    assert comp.compressed_bytes < 0.75 * len(sparse)


def test_old_operator_codes_survive_the_editor(mlperf_dir):
    """The KWS model stores its op codes in the deprecated field; a rebuilt copy must run the same."""
    from firmware_export.compress import read_model
    from firmware_export.tflite_model import parse_tflite
    from firmware_export.tflm import run

    path = mlperf_dir / "kws_ref_model.tflite"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    data = path.read_bytes()
    rebuilt = bytes(read_model(data).build())
    assert [op.name for op in parse_tflite(rebuilt).operators] == [op.name for op in parse_tflite(data).operators]
    x = np.random.default_rng(0).integers(-128, 128, size=(5, 49, 10, 1)).astype(np.int8)
    assert np.array_equal(run(rebuilt, x, quantized_input=True), run(data, x, quantized_input=True))


# ------------------------------------------------------------------ CLI: tinyprune compress

def test_cli_compress_end_to_end_without_tensorflow(demo_int8, tmp_path):
    import json

    from tests.helpers import cli_in_fresh_interpreter

    src = tmp_path / "sparse.tflite"
    src.write_bytes(_sparsify(demo_int8.read_bytes(), 0.8))
    out = tmp_path / "small.tflite"
    codes, heavy, p = cli_in_fresh_interpreter(["compress", src, "-o", out, "--method", "prune", "--json"])
    assert codes == [0] and heavy == [], p.stderr[-2000:]
    report = json.loads(p.stdout)
    assert report["outputs_identical_on_random_inputs"] is True
    assert report["compressed_bytes"] == out.stat().st_size < src.stat().st_size
    assert report["extra_arena_target_bytes"] > 0


def test_compress_file_is_the_cli_in_the_library(demo_int8, tmp_path):
    from firmware_export.compress import compress_file
    from firmware_export.errors import OutputExistsError
    from tests.helpers import run_cli

    src = tmp_path / "sparse.tflite"
    src.write_bytes(_sparsify(demo_int8.read_bytes(), 0.8))
    lib, cli = tmp_path / "lib.tflite", tmp_path / "cli.tflite"
    result = compress_file(src, lib, "prune")
    assert run_cli(["compress", str(src), "-o", str(cli), "--method", "prune"]).returncode == 0
    assert lib.read_bytes() == cli.read_bytes() == result.data
    with pytest.raises(OutputExistsError, match="--force"):
        compress_file(src, lib, "prune")
    compress_file(src, lib, "prune", force=True)


def test_cli_compress_bad_input_one_line_exit_2(demo_int8, tmp_path):
    from tests.helpers import run_cli, stderr_one_line

    text = tmp_path / "notes.tflite"
    text.write_text("not a model\n")
    exists = tmp_path / "exists.tflite"
    exists.write_bytes(b"keep me")
    cases = [
        (["compress", str(demo_int8), "-o", str(tmp_path / "a.tflite"), "--method", "lut", "--bits", "9"], "2..7"),
        (["compress", str(text), "-o", str(tmp_path / "b.tflite")], "tflite"),
        (["compress", str(tmp_path / "missing.tflite"), "-o", str(tmp_path / "c.tflite")], "missing.tflite"),
        (["compress", str(demo_int8), "-o", str(exists)], "--force"),
        # the demo int8 model is 50% sparse and unclustered: LUT at 2 bits has nothing to take
        (["compress", str(demo_int8), "-o", str(tmp_path / "d.tflite"), "--method", "lut", "--bits", "2"], "cluster"),
    ]
    for args, words in cases:
        proc = run_cli(args)
        assert proc.returncode == 2, (args, proc.stderr)
        line = stderr_one_line(proc)
        assert line.startswith("error:") and words in line, (args, line)
    assert exists.read_bytes() == b"keep me"
    assert not any((tmp_path / n).exists() for n in ("a.tflite", "b.tflite", "c.tflite", "d.tflite"))


# ------------------------------------------------------------------ found in review

def test_encoded_tensors_carry_no_stale_quantization(demo_int8):
    """The editor kept each encoded UINT8 tensor's per-channel scales; they are dead bytes in flash."""
    from firmware_export.compress import compress_model
    from firmware_export.tflite_model import parse_tflite

    comp = compress_model(_sparsify(demo_int8.read_bytes(), 0.8), "prune", measure=False)
    model = parse_tflite(comp.data)
    decode_inputs = {i for op in model.operators if op.name == "TFLM_DECODE" for i in op.inputs}
    assert decode_inputs
    for i in decode_inputs:
        assert model.tensors[i].dtype == "UINT8" and model.tensors[i].scale == (), model.tensors[i].name
    decoded = {o for op in model.operators if op.name == "TFLM_DECODE" for o in op.outputs}
    assert all(len(model.tensors[o].scale) > 1 for o in decoded)  # the decoders read these


def test_a_buffer_shared_with_an_uncompressed_tensor_is_reported_uncompressed(demo_int8):
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    from firmware_export.compress import _filter_tensors, compress_model, read_model
    from tinyprune.errors import ConfigError

    model = read_model(_sparsify(demo_int8.read_bytes(), 0.8))
    sg = model.subgraphs[0]
    for _, _, t in list(_filter_tensors(model)):  # as when a converter dedups an identical constant
        alias = model_editor.Tensor(shape=t.shape, dtype=t.dtype, buffer=t.buffer, quantization=t.quantization,
                                    name=f"{t.name}_alias")
        sg.tensors.append(alias)
        sg.outputs.append(alias)
    with pytest.raises(ConfigError, match="shares its buffer"):
        compress_model(bytes(model.build()), "prune", measure=False)


def test_non_int8_weights_are_skipped_with_a_reason(demo_int8):
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from firmware_export.compress import _filter_tensors, plan, read_model

    model = read_model(_sparsify(demo_int8.read_bytes(), 0.8))
    fc = [t for _, op, t in _filter_tensors(model) if op == "FULLY_CONNECTED"][-1]
    a = np.clip(fc.array, -8, 7).astype(np.int8).reshape(-1)
    fc.dtype = schema.TensorType.INT4
    fc.buffer.data = ((a[0::2] & 0xF) | ((a[1::2] & 0xF) << 4)).astype(np.uint8).tobytes()
    plans = plan(bytes(model.build()), "prune")
    int4 = [p for p in plans if "INT4" in p.reason]
    assert len(int4) == 1 and int4[0].method is None
    assert any(p.method == "prune" for p in plans)


def test_a_layout_the_decoders_reject_is_left_alone():
    """One scale on the last axis (a 1-channel depthwise filter): TFLM's LUT and PRUNE decoders both refuse it."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from firmware_export.compress import _plan_tensor

    arr = np.random.default_rng(0).choice(np.array([-3, 0, 5, 9], np.int8), size=(1, 40, 40, 1))
    t = me.Tensor(shape=arr.shape, dtype=schema.TensorType.INT8, data=arr.tobytes(), name="dw",
                  quantization=me.Quantization(scales=[0.1], zero_points=[0], axis=3))
    for method in ("prune", "lut", "auto"):
        p = _plan_tensor(t, "DEPTHWISE_CONV_2D", 0, method, 4)
        assert p.method is None and "axis" in p.reason, (method, p)
    from firmware_export.compress import _nothing_to_compress

    # the message names the real reason, not "not int8" or "not sparse"
    assert _nothing_to_compress([p], "auto", 4) == ("no weight tensor can be compressed: quantization axis the "
                                                    "DECODE kernels do not accept")
