"""`tinyprune prune --method structured` end to end on the digits demo, and its bad inputs."""

from __future__ import annotations

import json

import pytest
from tests.helpers import run_cli, stderr_one_line


STRUCTURED_SEEDED = ["prune", "structured", "models/digits_cnn.h5", "--ratio", "0.5", "--round-to", "4",
                     "--data", "digits", "--epochs", "3", "--seed", "0", "--json", "--quiet"]


@pytest.fixture(scope="module")
def pruned_run(tmp_path_factory, demo_model_path):
    out = tmp_path_factory.mktemp("structured") / "out"
    proc = run_cli(STRUCTURED_SEEDED + ["-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)


def test_seed_gives_the_same_bytes_and_json_is_report_json(pruned_run, tmp_path):
    """--seed makes a second run byte-identical (it was not: no command but budget took a seed),
    and --json prints what report.json holds (it left out arena_host_bytes)."""
    out, report = pruned_run
    assert report == json.loads((out / "report.json").read_text())
    assert report["seed"]["seed"] == 0 and report["arena_host_bytes"] > report["arena_target_bytes"]
    again = tmp_path / "again"
    proc = run_cli(STRUCTURED_SEEDED + ["-o", str(again)])
    assert proc.returncode == 0, proc.stderr
    assert (again / "model_int8.tflite").read_bytes() == (out / "model_int8.tflite").read_bytes()


def test_cli_prunes_fine_tunes_and_writes_a_smaller_int8(pruned_run, demo_int8, digits):
    from firmware_export import tflm

    out, report = pruned_run
    assert {p.name for p in out.iterdir()} >= {"model.h5", "model_int8.tflite", "report.json"}
    rows = {r["layer"]: r for r in report["layers"]}
    assert rows["conv2"]["channels_after"] == rows["conv2"]["channels_before"] // 2
    changed = [r for r in report["layers"] if r["channels_after"] != r["channels_before"]]
    assert changed and all(r["channels_after"] % 4 == 0 for r in changed)
    assert report["int8_bytes"] < demo_int8.stat().st_size
    data = (out / "model_int8.tflite").read_bytes()
    pred = tflm.run(data, digits.x_val).argmax(axis=1)
    assert (pred == digits.y_val).mean() >= 0.85  # 3 epochs of fine-tuning recover the demo's accuracy
    from tinyprune.load.model import load_model

    saved = load_model(out / "model.h5")  # the report's channel counts are the saved model's
    assert saved.get_layer("conv1").filters == len(report["kept"]["conv1"]) == rows["conv1"]["channels_after"]


def test_cli_prints_a_per_layer_table(tmp_path, demo_model_path):
    proc = run_cli(["prune", str(demo_model_path), "--method", "structured", "--ratio", "0.25", "-o",
                    str(tmp_path / "o")])
    assert proc.returncode == 0, proc.stderr
    assert "conv2" in proc.stdout and "params before" in proc.stdout and "24" in proc.stdout


@pytest.mark.parametrize("args, needle", [
    (["--ratio", "1.0"], "[0, 1)"),
    (["--ratio", "-0.2"], "[0, 1)"),
    ([], "--ratio"),
    (["--layer-ratio", "conv2"], "NAME=R"),
])
def test_cli_bad_values_exit_2_before_loading(tmp_path, demo_model_path, args, needle):
    proc = run_cli(["prune", str(demo_model_path), "--method", "structured", *args, "-o", str(tmp_path / "o")])
    assert proc.returncode == 2
    assert needle in stderr_one_line(proc)
    assert not (tmp_path / "o").exists()


def test_cli_unknown_ignore_and_unprunable_layer_exit_2(tmp_path, demo_model_path):
    proc = run_cli(["prune", str(demo_model_path), "--method", "structured", "--ratio", "0.5", "--ignore", "conv9",
                    "-o", str(tmp_path / "o")])
    assert proc.returncode == 2 and "conv9" in stderr_one_line(proc)
    proc = run_cli(["prune", str(demo_model_path), "--method", "structured", "--layer-ratio", "classes=0.5",
                    "-o", str(tmp_path / "o")])
    assert proc.returncode == 2 and "'classes'" in stderr_one_line(proc)
    assert not (tmp_path / "o").exists()


def test_cli_subclassed_model_exit_2(tmp_path):
    from tests.helpers import subclassed_model

    subclassed_model(3, 4).save(tmp_path / "sub")
    proc = run_cli(["prune", str(tmp_path / "sub"), "--method", "structured", "--ratio", "0.5", "-o", str(tmp_path / "o")])
    assert proc.returncode == 2 and "subclassed" in stderr_one_line(proc)


def test_cli_names_a_boundary_layer_and_taylor_needs_data(tmp_path):
    from tinyprune.tfsetup import keras

    L = keras.layers
    i = keras.Input((8, 8, 3))
    x = L.Permute((2, 1, 3), name="swap")(L.Conv2D(6, 1, name="c1")(i))
    x = L.Conv2D(4, 1, name="c2")(x)
    keras.Model(i, L.Dense(3)(L.Flatten()(x))).save(tmp_path / "m.h5")
    proc = run_cli(["prune", str(tmp_path / "m.h5"), "--method", "structured", "--ratio", "0.5", "-o", str(tmp_path / "o")])
    assert proc.returncode == 0, proc.stderr
    assert "note: layer 'swap' (Permute)" in proc.stdout and "boundary" in proc.stdout
    proc = run_cli(["prune", str(tmp_path / "m.h5"), "--method", "structured", "--ratio", "0.5", "--importance",
                    "taylor", "-o", str(tmp_path / "o2")])
    assert proc.returncode == 2 and "taylor" in stderr_one_line(proc)
