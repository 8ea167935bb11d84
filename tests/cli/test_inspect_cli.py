"""`tinyprune inspect`: what the tables show."""

from __future__ import annotations

from tests.helpers import run_cli


def _titles(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() in ("operators", "tensors")]


def test_no_tensors_leaves_out_the_tensor_table(demo_int8):
    full = run_cli(["inspect", str(demo_int8)])
    short = run_cli(["inspect", str(demo_int8), "--no-tensors"])
    assert full.returncode == 0 and short.returncode == 0, full.stderr + short.stderr
    assert _titles(full.stdout) == ["operators", "tensors"]
    assert _titles(short.stdout) == ["operators"]
    assert "CONV_2D" in short.stdout and "1x8x8x16" in short.stdout  # the operator table stays
    assert "activat" in full.stdout and "activat" not in short.stdout  # tensor kinds are gone


def test_no_tensors_leaves_out_the_tensors_of_the_json_too(demo_int8):
    import json

    full = json.loads(run_cli(["inspect", str(demo_int8), "--json"]).stdout)
    short = json.loads(run_cli(["inspect", str(demo_int8), "--json", "--no-tensors"]).stdout)
    assert full["tensors"] and "tensors" not in short
    assert short == {k: v for k, v in full.items() if k != "tensors"}
