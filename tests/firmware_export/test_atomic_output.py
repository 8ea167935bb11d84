"""Atomic output: a failure while a folder or file is being written leaves the old state exactly."""

from __future__ import annotations

import os

import pytest

from firmware_export import files
from firmware_export.errors import OutputExistsError


class Boom(Exception):
    pass


def _siblings(folder):
    return sorted(p.name for p in folder.parent.iterdir() if p.name != folder.name)


def test_failure_mid_write_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(Boom):
        with files.staged_dir(out) as tmp:
            (tmp / "model.h5").write_bytes(b"half")
            raise Boom
    assert not out.exists() and _siblings(out) == []


def test_failure_mid_write_with_force_keeps_the_old_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("previous run")
    with pytest.raises(Boom):
        with files.staged_dir(out, force=True) as tmp:
            (tmp / "new.txt").write_text("new")
            raise Boom
    assert [p.name for p in out.iterdir()] == ["old.txt"] and (out / "old.txt").read_text() == "previous run"
    assert _siblings(out) == []


def test_force_restores_the_old_folder_when_the_final_rename_fails(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("previous run")
    real = os.replace

    def replace(src, dst):  # fail only the move of the new folder into place
        if str(src).endswith(".tmp") and str(dst) == str(out):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(OSError):
        with files.staged_dir(out, force=True) as tmp:
            (tmp / "new.txt").write_text("new")
    assert [p.name for p in out.iterdir()] == ["old.txt"] and (out / "old.txt").read_text() == "previous run"
    assert _siblings(out) == []


def test_force_replaces_when_nothing_fails(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("previous run")
    with pytest.raises(OutputExistsError):
        with files.staged_dir(out):
            pass
    with files.staged_dir(out, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in out.iterdir()] == ["new.txt"] and _siblings(out) == []


def test_write_bytes_failure_leaves_the_old_file(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        files.write_bytes(path, "not bytes", force=True)  # fails inside the write
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["model.tflite"]


def test_a_file_output_onto_a_folder_is_refused_even_with_force(tmp_path):
    """It failed inside os.replace, naming the hidden temp file (".fw1.69uee9ao.tmp: Is a directory")."""
    folder = tmp_path / "fw"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="is a folder; give the output a file name"):
        files.write_bytes(folder, b"model", force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["fw"] and (folder / "keep.txt").read_text() == "mine"


def test_export_failing_mid_write_leaves_nothing(demo_int8, tmp_path, monkeypatch):
    """The C export stages its folder: a failure after some files are written leaves no output."""
    from firmware_export import cexport

    real = cexport.render_files
    rendered = {}

    def with_a_broken_last_file(*args, **kwargs):
        rendered.update(real(*args, **kwargs))
        return {**rendered, "zz_broken.h": None}  # written last: write_text(None) raises mid-write

    monkeypatch.setattr(cexport, "render_files", with_a_broken_last_file)
    out = tmp_path / "fw"
    with pytest.raises(TypeError):
        cexport.export_c(demo_int8.read_bytes(), out)
    assert len(rendered) >= 4  # the real files were written into staging before the failure
    assert not out.exists() and _siblings(out) == []
