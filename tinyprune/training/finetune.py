"""Compile, fine-tune and evaluate a tf_keras model on a `Dataset`, with a rich progress bar.

Shared by every pruning method that trains (magnitude schedules, structured fine-tuning,
lottery tickets, budget search). It picks the loss from the task: sparse categorical
cross-entropy for integer labels (from logits unless the model ends in a softmax), mean
squared error otherwise. It does not prune.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tinyprune.load.data import Dataset
from tinyprune.errors import ConfigError
from tinyprune.keras_facts import ends_in_softmax
from tinyprune.metrics import score
from tinyprune.training.limits import check_training_args
from tinyprune.tfsetup import keras

DEFAULT_LR = 1e-3  # Adam's default; fine-tuning after pruning uses it as well


def compile_for(model, ds: Dataset, lr: float = DEFAULT_LR, optimizer: Any = None):
    """Compile `model` with a loss and metric that fit `ds`. Returns the model.

    Raises ConfigError for a model tinyprune cannot train and evaluate as one task: several
    outputs, or class labels with a single output unit (binary models need two softmax units).
    """
    if len(model.outputs) != 1:
        raise ConfigError(f"model '{model.name}' has {len(model.outputs)} outputs; tinyprune trains, converts "
                          "and checks single-output models")
    if ds.is_classification and model.output_shape[-1] == 1:
        raise ConfigError(f"model '{model.name}' has one output unit but the data has class labels; use "
                          "one unit per class (e.g. Dense(2, activation='softmax') for a binary task)")
    from tinyprune.load.data import check_labels

    check_labels(ds, int(model.output_shape[-1]) if model.output_shape[-1] else None, f"data {ds.name}")
    opt = optimizer or keras.optimizers.Adam(lr)
    if ds.is_classification:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_in_softmax(model))
        model.compile(opt, loss, metrics=["accuracy"])
    else:
        model.compile(opt, "mse")
    return model


class RichProgress(keras.callbacks.Callback):
    """A rich progress bar over epochs (and batches), showing the latest metrics."""

    def __init__(self, description: str, epochs: int, quiet: bool = False):
        super().__init__()
        self.description, self.epochs, self.quiet = description, epochs, quiet
        self._progress: Progress | None = None

    def on_train_begin(self, logs=None):
        if self.quiet:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=20),
            TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), TextColumn("{task.fields[metrics]}"),
            transient=False, console=Console(stderr=True),
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=self.epochs, metrics="")

    def on_epoch_end(self, epoch, logs=None):
        if self._progress is None:
            return
        logs = logs or {}
        short = {"loss": "loss", "val_loss": "val_loss", "accuracy": "acc", "val_accuracy": "val_acc"}
        shown = " ".join(f"{short[k]} {v:.3f}" for k, v in logs.items() if k in short)
        self._progress.update(self._task, advance=1, metrics=shown)

    def on_train_end(self, logs=None):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


@dataclass
class TrainResult:
    epochs_run: int
    history: dict


def train(model, ds: Dataset, epochs: int, batch_size: int = 32, callbacks: Sequence = (),
          description: str = "fine-tuning", quiet: bool = False, early_stopping: int = 0) -> TrainResult:
    """Fit a compiled model on ds.x_train, validating on ds.x_val, with a progress bar.

    `early_stopping` > 0 stops after that many epochs without a better validation loss and
    restores the best weights.
    """
    check_training_args(epochs, batch_size)
    if epochs == 0:
        return TrainResult(0, {})
    cbs = list(callbacks) + [RichProgress(description, epochs, quiet)]
    if early_stopping > 0:
        cbs.append(keras.callbacks.EarlyStopping("val_loss", patience=early_stopping, restore_best_weights=True))
    hist = model.fit(ds.x_train, ds.y_train, validation_data=(ds.x_val, ds.y_val), epochs=epochs,
                     batch_size=batch_size, callbacks=cbs, verbose=0, shuffle=True)
    return TrainResult(len(hist.history.get("loss", [])), hist.history)


def predict(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    return model.predict(x, batch_size=batch_size, verbose=0)


def evaluate(model, ds: Dataset) -> float:
    """The model's validation score (see `score`)."""
    return score(predict(model, ds.x_val), ds.y_val)


def validation_loss(model, ds: Dataset) -> float:
    """The validation loss `compile_for` trains with, which early stopping watches: sparse
    cross-entropy for class labels (from probabilities clipped as Keras clips them, or from
    logits), else mean squared error. Finer than the score on a small validation set."""
    return _loss(model, predict(model, ds.x_val), ds)


def score_and_loss(model, ds: Dataset) -> tuple[float, float]:
    """(`evaluate`, `validation_loss`) from one pass over the validation data."""
    out = predict(model, ds.x_val)
    return score(out, ds.y_val), _loss(model, out, ds)


def _loss(model, out: np.ndarray, ds: Dataset) -> float:
    """`validation_loss` of the model's outputs `out` on ds.x_val."""
    out = out.astype(np.float64)
    if not ds.is_classification:
        return float(np.mean((out.reshape(ds.y_val.shape) - ds.y_val) ** 2))
    out = out.reshape(len(out), -1)
    if ends_in_softmax(model):
        log_p = np.log(np.clip(out, 1e-7, 1.0))  # keras.backend.epsilon()
    else:
        shifted = out - out.max(1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return float(-log_p[np.arange(len(out)), ds.y_val.astype(np.int64)].mean())
