"""`tinyprune run` end to end on digits: prune -> int8 -> TFLM -> C export -> fit."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_cli, stderr_one_line


@pytest.fixture(scope="module")
def run_result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    cfg = tmp / "run.toml"
    cfg.write_text('[prune]\nfinal_sparsity = 0.6\nepochs = 2\n[export]\nname = "digits"\n'
                   '[fit]\nboards = ["rpi-pico", "nucleo-l4r5zi", "stm32f746g-disco"]\n')
    out = tmp / "out"
    proc = run_cli(["run", str(cfg), "-o", str(out), "--json"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), out, cfg


def test_run_writes_every_stage(run_result):
    report, out, _ = run_result
    for name in ("model.h5", "model_int8.tflite", "fit.json", "report.json",
                 "firmware/digits_model_data.cc", "firmware/digits_model_data.h",
                 "firmware/digits_op_resolver.h", "firmware/digits_model_settings.h"):
        assert (out / name).is_file(), name
    assert (out / "model_int8.tflite").stat().st_size == report["int8_bytes"]  # the report states the artifact
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert written == set(report["files"])  # and lists exactly the files that are there


def test_int8_accuracy_and_tflm_parity(run_result):
    report, _, _ = run_result
    parity = report["parity"]
    assert parity["tflm_accuracy"] >= 0.9
    assert parity["agree_tflite_tflm"] == 1.0  # same top-1 on every validation sample
    assert parity["samples"] == 359  # 20% of each digit class of scikit-learn's 1,797 images
    # the names say which model: the parity's float model is the pruned one
    assert report["pruned_float_accuracy"] == pytest.approx(parity["float_accuracy"], abs=1 / 359)
    assert "float_accuracy" not in report and report["original_float_accuracy"] >= 0.9


def test_magnitude_sparsity_reached_but_flash_unchanged(run_result):
    report, _, _ = run_result
    assert min(report["sparsity"].values()) >= 0.59
    # masks keep every weight: the int8 model is exactly as large as the dense one
    assert report["int8_bytes"] == report["dense_int8_bytes"]


def test_fit_table_for_three_boards(run_result):
    report, _, _ = run_result
    rows = report["fit"]["boards"]
    assert [row["board"] for row in rows] == ["rpi-pico", "nucleo-l4r5zi", "stm32f746g-disco"]
    assert all(row["fits"] and row["flash_bytes"] > report["int8_bytes"] for row in rows)


def test_existing_output_is_not_overwritten(run_result):
    _, out, cfg = run_result
    before = (out / "model_int8.tflite").read_bytes()
    proc = run_cli(["run", str(cfg), "-o", str(out)])
    assert proc.returncode == 2
    assert "--force" in stderr_one_line(proc)
    assert (out / "model_int8.tflite").read_bytes() == before


@pytest.mark.slow
def test_run_is_seeded_the_same_config_gives_the_same_artifact(run_result, tmp_path):
    """[prune] seed (default 0) runs the fine-tune under training.reproducible: a second run of
    the same config writes the same int8 bytes and measures the same accuracy."""
    report, out, cfg = run_result
    assert report["seed"]["seed"] == 0 and report["seed"]["op_determinism"] is True
    proc = run_cli(["run", str(cfg), "-o", str(tmp_path / "again"), "--json"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads(proc.stdout)
    assert (tmp_path / "again" / "model_int8.tflite").read_bytes() == (out / "model_int8.tflite").read_bytes()
    assert again["pruned_float_accuracy"] == report["pruned_float_accuracy"] and again["parity"] == report["parity"]


def test_run_with_pruning_preserving_qat(tmp_path):
    cfg = tmp_path / "qat.toml"
    cfg.write_text('[prune]\nfinal_sparsity = 0.5\nepochs = 1\n[quantize]\nqat_epochs = 1\n'
                   '[fit]\nboards = ["rpi-pico"]\n')
    proc = run_cli(["run", str(cfg), "-o", str(tmp_path / "out"), "--json"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["quantization"].startswith("qat (1 epochs")
    assert report["parity"]["agree_tflite_tflm"] == 1.0
    # the zeros survive QAT into the int8 kernels (the pruning-preserving scheme)
    from firmware_export.tflite_model import read_tflite

    model = read_tflite(tmp_path / "out" / "model_int8.tflite")
    kernels = [t for t in model.tensors if t.is_constant and t.dtype == "INT8" and len(t.shape) >= 2]
    zeros = [float((model.constant(t.index) == 0).mean()) for t in kernels if t.num_elements > 100]
    assert zeros and min(zeros) >= 0.45, zeros


def test_bad_qat_epochs_is_one_line(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[quantize]\nqat_epochs = -1\n")
    proc = run_cli(["run", str(cfg), "-o", str(tmp_path / "out")])
    assert proc.returncode == 2 and "qat_epochs" in stderr_one_line(proc)
