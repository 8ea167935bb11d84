"""What a user installing from a wheel gets: every file the CLI needs, the licence, sane metadata."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = out.glob("tinyprune-*.whl")
    return path


def test_wheel_carries_every_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("tinyprune/pipeline/default_run.toml", "tinyprune/pipeline/digits_cnn.h5",
                   "firmware_export/boards.toml", "firmware_export/tflm_ops.toml",
                   "firmware_export/runtime_sizes.toml", "firmware_export/templates/main.cc"):
        assert needed in names, needed
    demo = zipfile.ZipFile(wheel).read("tinyprune/pipeline/digits_cnn.h5")
    assert demo == (ROOT / "models" / "digits_cnn.h5").read_bytes()  # the real file, not a link
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_wheel_metadata_is_spdx_with_ranges(wheel):
    meta = next(zipfile.ZipFile(wheel).read(n).decode() for n in zipfile.ZipFile(wheel).namelist()
                if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: Apache-2.0" in meta
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert not any("pyyaml" in r.lower() for r in requires)
    assert not any("==" in r.split(";")[0] for r in requires), "exact pins belong in constraints.txt"
    assert any("ray" in r and 'extra == "ray"' in r for r in requires)


def test_installed_wheel_finds_the_demo_outside_a_checkout(wheel, tmp_path):
    """The default `run` config resolves the bundled model from the installed package."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, timeout=600)
    deps = [p for p in sys.path if p.endswith("site-packages")]
    code = ("from tinyprune.pipeline.config import load_config; c = load_config(); p = c.resolve(c.model.path); "
            "import tinyprune; print(tinyprune.__file__); print(p, p.is_file())")
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": ":".join([str(target), *deps]), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    where, resolved = proc.stdout.splitlines()
    assert where.startswith(str(target)), where  # the wheel's copy, not the checkout
    assert resolved.endswith("digits_cnn.h5 True") and str(target) in resolved


def test_constraints_pin_every_declared_dependency():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = {line.split("==")[0].lower().replace("_", "-")
              for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line}
    declared = list(meta["dependencies"]) + [d for extra in meta["optional-dependencies"].values() for d in extra]
    for dep in declared:
        name = dep.split(";")[0].split("[")[0]
        for sep in "<>=!~":
            name = name.split(sep)[0]
        assert name.strip().lower() in pinned, f"{name} has no exact version in constraints.txt"


def test_help_shows_single_percent():
    proc = subprocess.run([sys.executable, "-m", "tinyprune", "prune", "budget", "--help"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and "50%" in proc.stdout and "%%" not in proc.stdout
