"""`tinyprune prune <method>`: each subcommand shows its own options; the `--method` spelling still works."""

from __future__ import annotations

import json

import pytest

from tests.helpers import DEMO_MODEL, cli_in_fresh_interpreter, run_cli, run_python, stderr_one_line


def _help(*args: str) -> str:
    proc = run_cli(["prune", *args, "--help"])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_group_lists_every_method():
    text = _help()
    for name in ("magnitude", "structured", "budget", "synflow", "snip", "grasp", "magnitude-init", "random-init",
                 "imp"):
        assert f"  {name} " in text, name


@pytest.mark.parametrize("method,own,foreign", [
    ("structured", ["--ratio", "--round-to", "--importance"], ["--sparsity", "--flash-budget", "--compression"]),
    ("magnitude", ["--sparsity", "--compress", "--bits"], ["--ratio", "--flash-budget", "--compression"]),
    ("budget", ["--flash-budget", "--margin", "--round-to"], ["--sparsity", "--ratio", "--compression"]),
    ("synflow", ["--compression", "--rounds"], ["--sparsity", "--ratio", "--flash-budget", "--rewind-epoch"]),
    ("imp", ["--compression", "--rewind-epoch"], ["--sparsity", "--ratio", "--flash-budget"]),
])
def test_each_subcommand_shows_only_its_options(method, own, foreign):
    text = _help(method)
    for flag in own:
        assert flag in text, (method, flag)
    for flag in foreign:
        assert flag not in text, (method, flag)


def test_new_spelling_prunes_end_to_end(tmp_path):
    out = tmp_path / "s"
    proc = run_cli(["prune", "structured", str(DEMO_MODEL), "--ratio", "0.5", "--json", "-o", str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["method"] == "structured" and report["params_after"] < report["params_before"]
    assert (out / "model.h5").is_file() and (out / "report.json").is_file()


@pytest.mark.parametrize("args,needle", [
    (["--sparsity", "0.5", "--ratio", "0.5"], "--ratio is an option of `tinyprune prune structured`"),
    (["--method", "synflow", "--compression", "10", "--sparsity", "0.5"],
     "--sparsity is an option of `tinyprune prune magnitude`"),
    (["--method", "nope"], "'nope' is not one of"),
    (["--method", "structured", "--ratio", "0.5", "--epochs", "-1"], "--epochs"),
    (["--method", "structured", "--ratio", "0.5", "--batch-size", "0"], "--batch-size"),
    (["--method", "structured", "--ratio", "0.5", "--epochs", str(2 ** 63 - 1)], "--epochs"),
])
def test_old_spelling_names_where_an_option_belongs(args, needle, tmp_path):
    out = tmp_path / "o"
    proc = run_cli(["prune", str(DEMO_MODEL), *args, "-o", str(out)])
    assert proc.returncode == 2
    assert needle in stderr_one_line(proc)
    assert not out.exists()


@pytest.mark.parametrize("args,command", [
    (["prune", "structured", str(DEMO_MODEL), "--sparsity", "0.5"], "tinyprune prune structured"),
    (["prune", str(DEMO_MODEL), "--method", "nope"], "tinyprune prune"),
    (["fit", "--bogus"], "tinyprune fit"),
    (["--bogus"], "tinyprune"),
])
def test_a_usage_error_names_the_command_whose_help_to_read(args, command, tmp_path):
    """The hint names a command that exists (it said `tinyprune structured --help`)."""
    proc = run_cli([*args, "-o", str(tmp_path / "o")])
    assert proc.returncode == 2
    assert stderr_one_line(proc).endswith(f"(see: {command} --help)")


def test_a_misplaced_option_fails_before_tensorflow_starts(tmp_path):
    codes, heavy, proc = cli_in_fresh_interpreter(["prune", DEMO_MODEL, "--ratio", "0.5", "-o", tmp_path / "n"])
    assert codes == [2] and heavy == [] and "--ratio is an option of" in proc.stderr


def test_unsafe_load_through_the_cli(tmp_path):
    """A Lambda layer runs code from the file: refused without --unsafe-load, loaded with it."""
    marker = tmp_path / "lambda_ran"
    build = f"""
from tinyprune.tfsetup import keras
inp = keras.Input((8, 8, 1))
x = keras.layers.Conv2D(4, 3, name="conv")(inp)
x = keras.layers.Lambda(lambda t: t * 1.0, name="scale")(x)
x = keras.layers.Flatten()(x)
out = keras.layers.Dense(10, activation="softmax", name="head")(x)
keras.Model(inp, out).save({str(tmp_path / 'lam.h5')!r})
"""
    assert run_python(build).returncode == 0
    args = ["prune", "magnitude-init", str(tmp_path / "lam.h5"), "--compression", "2"]
    refused = run_cli([*args, "-o", str(tmp_path / "a")])
    assert refused.returncode == 2 and "--unsafe-load" in stderr_one_line(refused)
    assert not (tmp_path / "a").exists() and not marker.exists()
    allowed = run_cli([*args, "--unsafe-load", "--json", "-o", str(tmp_path / "b")])
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert json.loads(allowed.stdout)["kept_fraction"] == pytest.approx(0.5, abs=0.01)


@pytest.mark.slow
def test_compress_auto_through_the_cli(tmp_path):
    out = tmp_path / "auto"
    proc = run_cli(["prune", "magnitude", str(DEMO_MODEL), "--data", "digits", "--sparsity", "0.8", "--epochs", "1",
                    "--compress", "auto", "--bits", "4", "--json", "-o", str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    comp = report["compression"]
    assert set(comp["formats_used"]) <= {"lut", "prune"} and comp["formats_used"]
    assert comp["compressed_bytes"] < comp["dense_int8_bytes"]
    assert (out / "model_int8_compressed.tflite").stat().st_size == comp["compressed_bytes"]
    assert comp["outputs_identical_to_uncompressed"] is True


@pytest.mark.slow
def test_margin_tightens_the_flash_target(tmp_path):
    proc = run_cli(["prune", "budget", str(DEMO_MODEL), "--data", "digits", "--flash-budget", "50%", "--margin",
                    "0.2", "--epochs", "0", "--importance", "l1", "--allocation", "sensitivity", "--mixup", "2",
                    "--json", "-o", str(tmp_path / "m")])
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout)
    assert r["choices"]["fine_tune"]["mixup"] == 2  # the CLI option reaches the distillation
    original = r["original"]["int8_bytes"]
    assert r["targets"]["flash_bytes"] == int(0.5 * original * 0.8)  # whole bytes, rounded down
    assert r["final"]["int8_bytes"] <= 0.5 * original * 0.8  # the artifact meets the tightened target
    assert (tmp_path / "m" / "model_int8.tflite").stat().st_size == r["final"]["int8_bytes"]
