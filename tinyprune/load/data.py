"""Datasets for pruning, fine-tuning, calibration and evaluation.

Two sources:
- the built-in name `digits`: scikit-learn's bundled 8x8 handwritten digits (1,797 images,
  no download), scaled to [0, 1], shape (N, 8, 8, 1), split 80/20 stratified with a fixed seed;
- a `.npz` file with either `x_train`, `y_train`, `x_val`, `y_val`, or just `x` and `y`
  (split 80/20 here, stratified when `y` holds class labels, with a fixed seed).
  `x` may be float or uint8 (uint8 is divided by 255). `y` holds integer class labels
  (or, for a regression/autoencoder model, float targets).

This module only loads and splits arrays; it does not import TensorFlow.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyprune.errors import DataError, InputFileError

SPLIT_SEED = 0  # fixed so that every run of the same data sees the same validation split
VAL_FRACTION = 0.2
BUILTIN = ("digits",)


@dataclass
class Dataset:
    """Train and validation arrays, plus where they came from."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    @property
    def is_classification(self) -> bool:
        return self.y_train.ndim == 1 and np.issubdtype(self.y_train.dtype, np.integer)

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_val.max())) + 1 if self.is_classification else 0

    def fit_to(self, input_shape: tuple) -> "Dataset":
        """Reshape x to a model's input shape (without the batch axis) when the sizes agree."""
        target = tuple(int(d) for d in input_shape[1:])
        if None in target or self.x_train.shape[1:] == target:
            return self
        if int(np.prod(self.x_train.shape[1:])) != int(np.prod(target)):
            raise DataError(
                f"data {self.name} has samples of shape {self.x_train.shape[1:]} but the model "
                f"expects {target}; give data that matches the model's input"
            )
        return Dataset(self.name, self.x_train.reshape((-1, *target)), self.y_train,
                       self.x_val.reshape((-1, *target)), self.y_val)

    def subset(self, n_train: int | None = None, n_val: int | None = None) -> "Dataset":
        """The first n samples of each split (deterministic), for quick runs."""
        return Dataset(self.name, self.x_train[:n_train], self.y_train[:n_train],
                       self.x_val[:n_val], self.y_val[:n_val])


def _as_float(x: np.ndarray, where: str = "x") -> np.ndarray:
    """Inputs as float32: numeric, at least 2-d (samples x features), every value finite."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where} holds {x.dtype} values; inputs must be numbers (float or integer arrays)")
    if x.ndim < 2:
        raise DataError(f"{where} has shape {x.shape}; inputs need a sample axis and at least one feature "
                        "axis, e.g. (N, 8, 8, 1)")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    with np.errstate(over="ignore", invalid="ignore"):
        out = x.astype(np.float32)
    if not np.isfinite(out).all():
        bad = int((~np.isfinite(out)).sum())
        raise DataError(f"{where} has {bad} NaN or infinite value(s) (or values too large for float32); "
                        "clean the data before pruning")
    return out


def _as_labels(y: np.ndarray, where: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "biuf" or y.ndim == 0:
        raise DataError(f"{where} holds {y.dtype} values of shape {y.shape}; labels must be an array of "
                        "integer class labels (or numeric targets)")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataError(f"{where} has NaN or infinite values; labels must be finite")
    if y.ndim == 2 and y.shape[1] > 1 and set(np.unique(y)) <= {0, 1} and (y.sum(axis=1) == 1).all():
        return y.argmax(axis=1).astype(np.int64)  # one-hot
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        return y.astype(np.int64)
    return y.astype(np.float32)


def split(x: np.ndarray, y: np.ndarray, name: str) -> Dataset:
    """Deterministic 80/20 split, stratified by label when `y` holds class labels."""
    rng = np.random.default_rng(SPLIT_SEED)
    n = len(x)
    if n < 5:
        raise DataError(f"data {name} has {n} samples; at least 5 are needed to split off validation data")
    val_idx = []
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        for label in np.unique(y):
            idx = np.flatnonzero(y == label)
            rng.shuffle(idx)
            val_idx.extend(idx[: max(1, int(round(len(idx) * VAL_FRACTION)))])
    else:
        perm = rng.permutation(n)
        val_idx = list(perm[: max(1, int(n * VAL_FRACTION))])
    is_val = np.zeros(n, dtype=bool)
    is_val[np.array(val_idx, dtype=np.int64)] = True
    return Dataset(name, x[~is_val], y[~is_val], x[is_val], y[is_val])


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits as (N, 8, 8, 1) floats in [0, 1]."""
    from sklearn.datasets import load_digits as _load

    d = _load()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    return split(x, d.target.astype(np.int64), "digits")


def check_labels(ds: Dataset, num_classes: int | None = None, source: str = "the data") -> None:
    """Raise DataError unless class labels are integers in [0, num_classes) (num_classes: the
    model's output width; without it only non-negative is checked). Float targets pass."""
    for y, split_name in ((ds.y_train, "train"), (ds.y_val, "val")):
        if y.dtype.kind == "f":
            if y.ndim == 1 and num_classes and num_classes > 1 and np.array_equal(y, np.round(y)):
                raise DataError(f"{source}: {split_name} labels are floats holding whole numbers; store class labels "
                                "as integers (y.astype(int))")
            continue
        if y.size and int(y.min()) < 0:
            raise DataError(f"{source}: {split_name} labels include {int(y.min())}; class labels must be 0 or more")
        if num_classes is not None and y.size and int(y.max()) >= num_classes:
            raise DataError(f"{source}: {split_name} labels go up to {int(y.max())} but the model has "
                            f"{num_classes} output classes; labels must be in [0, {num_classes})")


def load_npz(path: str | Path) -> Dataset:
    """Load a .npz in the documented format (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such data file; give a .npz or the name 'digits'")
    with path.open("rb") as f:
        head = f.read(6)
    if head == b"\x93NUMPY":
        raise DataError(f"{path} is a single .npy array, not a .npz archive; save x and y together with "
                        "numpy.savez(path, x=x, y=y)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"{path} is not a readable .npz file ({e}); save it with numpy.savez") from None
    keys = set(arrays)
    if {"x_train", "y_train", "x_val", "y_val"} <= keys:
        ds = Dataset(path.stem, _as_float(arrays["x_train"], f"{path}: x_train"),
                     _as_labels(arrays["y_train"], f"{path}: y_train"),
                     _as_float(arrays["x_val"], f"{path}: x_val"), _as_labels(arrays["y_val"], f"{path}: y_val"))
    elif {"x", "y"} <= keys:
        ds = split(_as_float(arrays["x"], f"{path}: x"), _as_labels(arrays["y"], f"{path}: y"), path.stem)
    else:
        raise DataError(
            f"{path} has keys {sorted(keys)}; expected x_train, y_train, x_val, y_val "
            "(or x and y, which tinyprune splits 80/20)"
        )
    if ds.x_train.shape[1:] != ds.x_val.shape[1:]:
        raise DataError(f"{path}: x_train samples have shape {ds.x_train.shape[1:]} but x_val samples "
                        f"{ds.x_val.shape[1:]}; both splits must have the same sample shape")
    for xs, ys, split_name in ((ds.x_train, ds.y_train, "train"), (ds.x_val, ds.y_val, "val")):
        if len(xs) != len(ys):
            raise DataError(f"{path}: {split_name} has {len(xs)} inputs but {len(ys)} labels")
        if len(xs) == 0:
            raise DataError(f"{path}: the {split_name} split is empty")
    check_labels(ds, None, str(path))
    return ds


def load_data(spec: str | Path) -> Dataset:
    """`digits` or a path to a .npz file."""
    if str(spec) == "digits":
        return load_digits()
    return load_npz(spec)
