"""`tinyprune run` composes the same stages for every pruning method, including a budget."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from tests.helpers import run_cli, stderr_one_line


def test_code_defaults_are_the_bundled_config():
    from tinyprune.pipeline.config import RunConfig, load_config

    loaded, coded = load_config(), RunConfig()
    for section in ("model", "data", "prune", "quantize", "export", "fit", "output"):
        assert asdict(getattr(loaded, section)) == asdict(getattr(coded, section)), section


@pytest.mark.parametrize("toml,needle", [
    ('[prune]\nmethod = "structured"\nfinal_sparsity = 0.7\n', "final_sparsity does not apply to method 'structured'"),
    ('[prune]\nmethod = "synflow"\ncompression = 0.5\n', "--compression must be >= 1"),
    ('[prune]\nmethod = "budget"\n', "no budget given"),
    ('[prune]\nmethod = "budget"\nflash_budget = "ten KB"\n', "cannot read flash budget"),
    ('[prune]\nmethod = "lasso"\n', "method 'lasso' is unknown"),
    ('[prune]\nmethod = "structured"\nratio = 0.5\nimportance = "xyz"\n', "unknown importance 'xyz'"),
    ('[prune]\nseed = "zero"\n', "seed must be int"),
    ('[prune]\nepochs = 9223372036854775807\n', "epochs must be a whole number in [1, 10000]"),
])
def test_bad_prune_sections_are_one_line(tmp_path, toml, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    proc = run_cli(["run", str(cfg), "-o", str(tmp_path / "out")])
    assert proc.returncode == 2 and needle in stderr_one_line(proc)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("method,toml", [
    ("structured", '[prune]\nmethod = "structured"\nratio = 0.5\nepochs = 1\n'),
    ("budget", '[prune]\nmethod = "budget"\nflash_budget = "40%"\nepochs = 1\n'),
])
def test_run_with_a_method_that_removes_filters_shrinks_flash(tmp_path, method, toml):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml + '[fit]\nboards = ["rpi-pico"]\n')
    out = tmp_path / "out"
    proc = run_cli(["run", str(cfg), "-o", str(out), "--json"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    assert r["method"] == method and r["prune"]["method"] == method
    assert r["int8_bytes"] < r["dense_int8_bytes"]  # removal shrinks the file, unlike magnitude masks
    if method == "budget":
        assert r["int8_bytes"] <= 0.4 * r["dense_int8_bytes"]
    assert (out / "model_int8.tflite").stat().st_size == r["int8_bytes"]
    for name in ("model.h5", "fit.json", "report.json", "firmware/digits_model_data.cc"):
        assert (out / name).is_file(), name
    assert r["parity"]["agree_tflite_tflm"] == 1.0
