"""Validation at the edge: board profiles, .npz data, training ranges, rich markup in names.

The exact inputs found on main that gave a traceback (exit 1) or a silent wrong answer.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from firmware_export.boards import parse_boards
from firmware_export.errors import BoardError, ConfigError
from tests.helpers import run_cli, stderr_one_line
from tinyprune.errors import DataError

_BOARD = 'name = "b1"\ncore = "cortex-m4f"\nclock_mhz = {clock}\nflash_kb = {flash}\nsram_kb = {sram}\n'


@pytest.mark.parametrize("clock,flash,sram", [("nan", 1024, 256), (64, "nan", 256), (64, "inf", 256),
                                              (64, 1024, "1e308"), (64, "-inf", 256), ("inf", 1024, 256)])
def test_board_fields_finite_positive_bounded(clock, flash, sram):
    with pytest.raises(BoardError, match="finite positive|larger than any"):
        parse_boards("[[board]]\n" + _BOARD.format(clock=clock, flash=flash, sram=sram), "b.toml")


def test_board_name_with_markup_is_refused_and_other_fields_are_printed_literally(tmp_path, demo_int8):
    f = tmp_path / "b.toml"
    f.write_text("[[board]]\n" + _BOARD.format(clock=64, flash=1024, sram=256).replace('"b1"', '"[/red]x"'))
    proc = run_cli(["boards", "--boards-file", str(f)], timeout=120)
    assert proc.returncode == 2 and "field 'name'" in stderr_one_line(proc)
    f.write_text("[[board]]\n" + _BOARD.format(clock=64, flash=1024, sram=256)
                 + 'mcu = "[/bold]mcu[/]"\nsource = "[/link]src"\n')
    proc = run_cli(["boards", "--boards-file", str(f)], timeout=120, env={**os.environ, "COLUMNS": "400"})
    assert proc.returncode == 0, proc.stderr
    assert "[/bold]mcu[/]" in proc.stdout and "[/link]src" in proc.stdout
    proc = run_cli(["fit", str(demo_int8), "--boards-file", str(f)], timeout=300)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr


def test_markup_in_tensor_name_and_model_path(demo_int8, tmp_path):
    from tests.security.mutate import edit

    def rename(m):
        m.subgraphs[0].tensors[0].name = b"[/bold]tensor[/]"
    folder = tmp_path / "[/red]dir"  # the folders '[' and 'red]dir': the path string holds '[/red]'
    folder.mkdir(parents=True)
    path = folder / "[bold]m.tflite"
    path.write_bytes(edit(demo_int8.read_bytes(), rename))
    wide = {**os.environ, "COLUMNS": "400"}  # rich wraps long cells at 80 columns in a pipe
    proc = run_cli(["inspect", str(path)], timeout=300, env=wide)
    assert proc.returncode == 0, proc.stderr
    assert "[/bold]tensor[/]" in proc.stdout and "[bold]m.tflite" in proc.stdout
    proc = run_cli(["export", str(path), "-o", str(folder / "[" / "y]out")], timeout=300)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli(["fit", str(path), "--layers"], timeout=300)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr


def _npz(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


X = np.random.default_rng(0).random((40, 8, 8, 1)).astype(np.float32)


@pytest.mark.parametrize("y,match", [
    (np.full(40, -1), "0 or more"),
    (np.array(["a"] * 40), "labels must be"),
    (np.array(3), "labels must be"),
])
def test_bad_labels_at_load(tmp_path, y, match):
    from tinyprune.load.data import load_npz

    with pytest.raises(DataError, match=match):
        load_npz(_npz(tmp_path, x=X, y=y))


def test_labels_out_of_range_and_float_labels_against_the_model(tmp_path):
    from tinyprune.load.data import check_labels, load_npz

    ds = load_npz(_npz(tmp_path, x=X, y=np.arange(40) % 12))
    with pytest.raises(DataError, match=r"labels must be in \[0, 10\)"):
        check_labels(ds, 10)
    ds = load_npz(_npz(tmp_path, x=X, y=(np.arange(40) % 10).astype(np.float32)))
    with pytest.raises(DataError, match="as integers"):
        check_labels(ds, 10)


@pytest.mark.parametrize("x,match", [
    (np.array(["s"] * 40), "must be numbers"),
    (np.array(1.0), "sample axis"),
    (np.arange(40.0), "sample axis"),
    (np.where(np.arange(40 * 64).reshape(40, 8, 8, 1) == 5, np.inf, 0.5), "NaN or infinite"),
    (np.where(np.arange(40 * 64).reshape(40, 8, 8, 1) == 5, np.nan, 0.5), "NaN or infinite"),
])
def test_bad_inputs_at_load(tmp_path, x, match):
    from tinyprune.load.data import load_npz

    with pytest.raises(DataError, match=match):
        load_npz(_npz(tmp_path, x=x, y=np.arange(40) % 10))


def test_npy_instead_of_npz(tmp_path):
    from tinyprune.load.data import load_npz

    path = tmp_path / "x.npz"
    with path.open("wb") as f:
        np.save(f, X)
    with pytest.raises(DataError, match="single .npy array"):
        load_npz(path)


@pytest.mark.parametrize("epochs,batch", [(2**63 - 1, 32), (-1, 32), (2, 0), (2, 2**40), (True, 32), (2.5, 32)])
def test_training_ranges(epochs, batch):
    from tinyprune.training.limits import check_training_args

    with pytest.raises(ConfigError):
        check_training_args(epochs, batch)


def test_library_entry_points_refuse_bad_ranges(digits):
    from tinyprune.load.model import load_model
    from tinyprune.prune.magnitude import prune_magnitude
    from tinyprune import training
    from tests.helpers import DEMO_MODEL

    model = load_model(DEMO_MODEL)
    with pytest.raises(ConfigError, match="epochs"):
        prune_magnitude(model, digits, epochs=-1)
    with pytest.raises(ConfigError, match="batch size"):
        prune_magnitude(model, digits, epochs=1, batch_size=0)
    training.compile_for(model, digits)
    with pytest.raises(ConfigError, match="batch size"):
        training.train(model, digits, epochs=1, batch_size=0)


def test_config_epochs_2_63(tmp_path):
    from tinyprune.pipeline.config import load_config

    cfg = tmp_path / "run.toml"
    cfg.write_text(f"[prune]\nepochs = {2**63 - 1}\n")
    with pytest.raises(ConfigError, match="epochs"):
        load_config(cfg)  # the CLI's `run` reads the config through this (one line, exit 2)
