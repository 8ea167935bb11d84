"""Atomic output: write to a temporary name next to the target, then rename.

A failed run leaves nothing half-written, and nothing is overwritten unless the caller
says `force`. An output that is an input, contains one or lies inside one is refused even
with `force` (every writer takes the paths it reads as `inputs`). This module knows nothing
about models.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from firmware_export.errors import InputFileError, OutputExistsError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_not_input(path: Path, inputs: Iterable[str | Path] = ()) -> None:
    """Raise OutputExistsError if `path` is, contains or lies inside one of `inputs`."""
    out = Path(path).resolve()
    for inp in inputs:
        src = Path(inp).resolve()
        if out == src or out in src.parents or src in out.parents:
            how = "is" if out == src else "contains" if out in src.parents else "is inside"
            raise OutputExistsError(f"output {path} {how} the input {inp}; write the output somewhere else "
                                    "(--force never replaces an input)")


def check_writable(path: Path, force: bool, inputs: Iterable[str | Path] = ()) -> None:
    """Raise OutputExistsError if `path` is (or holds, or is inside) an input, or exists and `force` is false."""
    path = Path(path)
    check_not_input(path, inputs)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists; pass --force to overwrite it")


def check_writable_file(path: Path, force: bool, inputs: Iterable[str | Path] = ()) -> None:
    """check_writable for a file output; a folder at `path` is refused even with `force`
    (--force replaces a file, it does not turn a folder into one)."""
    path = Path(path)
    check_writable(path, force, inputs)
    if path.is_dir():
        raise OutputExistsError(f"{path} is a folder; give the output a file name (e.g. {path / 'model.tflite'})")


def read_user_text(path: str | Path, what: str, expected: str) -> str:
    """A user's UTF-8 text file (boards TOML, labels, measured latencies), or InputFileError naming
    `what` it was meant to be and the `expected` content."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such {what}; give {expected}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputFileError(f"{path} is not UTF-8 text; give {expected}") from None
    except OSError as e:
        raise InputFileError(f"{path}: cannot read the {what} ({e.strerror or e.__class__.__name__})") from None


def write_bytes(path: Path, data: bytes, force: bool = False, inputs: Iterable[str | Path] = ()) -> Path:
    """Write `data` to `path` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    check_writable_file(path, force, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the user's usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_text(path: Path, text: str, force: bool = False, inputs: Iterable[str | Path] = ()) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return write_bytes(path, text.encode("utf-8"), force=force, inputs=inputs)


@contextlib.contextmanager
def staged_dir(path: Path, force: bool = False, inputs: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Build a whole output folder in a temp folder, then move it into place.

    Yields the temp folder. On success the old `path` (if `force`) is replaced; on any
    error the temp folder is removed and `path` is untouched. The current folder and its
    parents are never replaced, even with `force`.
    """
    path = Path(path)
    resolved = path.resolve()
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents:
        raise OutputExistsError(f"{path} is the current folder or contains it; give a new output folder")
    check_writable(path, force, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs get the user's usual mode
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)  # put the previous output back
                raise
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
