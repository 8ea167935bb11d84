"""Shared fixtures: the bundled demo model, digits data, ../shared/data (skip when absent)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.helpers import DEMO_MODEL, SHARED

# The suite never reads or writes the user's real cache (~/.cache/tinyprune): one fresh folder
# per test session, inherited by every CLI subprocess.
os.environ["TINYPRUNE_CACHE"] = tempfile.mkdtemp(prefix="tinyprune-test-cache-")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (MNIST, MLPerf Tiny models); the test is skipped when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def mlperf_dir(shared_data: Path) -> Path:
    d = shared_data / "mlperf_tiny"
    if not d.is_dir():
        pytest.skip(f"MLPerf Tiny models not found at {d}")
    return d


@pytest.fixture(scope="session")
def mnist_train(shared_data):
    """MNIST's 60,000 training images from ../shared/data as a Dataset (x, y split 80/20),
    loaded once per session; skipped when the file is absent."""
    from tinyprune.load.data import load_npz

    path = shared_data / "mnist" / "mnist_train.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return load_npz(path).fit_to((None, 28, 28, 1))


@pytest.fixture(scope="session")
def digits():
    from tinyprune.load.data import load_digits

    return load_digits()


@pytest.fixture(scope="session")
def demo_model_path() -> Path:
    return DEMO_MODEL


@pytest.fixture(scope="session")
def demo_int8(tmp_path_factory, digits) -> Path:
    """The demo model converted to a full-int8 .tflite (built once per test session)."""
    from tinyprune.load.model import load_model
    from tinyprune.quantize.int8 import quantize_int8

    model = load_model(DEMO_MODEL)
    data = quantize_int8(model, digits.x_train, num_calibration=200)
    path = tmp_path_factory.mktemp("demo_int8") / "digits_int8.tflite"
    path.write_bytes(data)
    return path
