"""Learning-rate schedules for fine-tuning, as Keras callbacks that work with any compiled model.

A pruned model fine-tuned at a constant Adam rate ends wherever the last batches left it;
decaying the rate to zero over the run lets it settle (cosine annealing, Loshchilov & Hutter
2017, "SGDR", a common schedule for fine-tuning after pruning). The callback
reads the run's length from `fit` itself (epochs x steps per epoch), so it needs no arguments
and works for `training.train` and `training.distill` alike. It does not change the optimizer,
only its learning rate, and puts the starting rate back when training ends.

>>> from tinyprune import training
>>> training.train(model, ds, epochs=8, callbacks=[training.CosineDecay()])  # doctest: +SKIP
"""

from __future__ import annotations

import math

from tinyprune.tfsetup import keras
from tinyprune.training.limits import check_lr_schedule


class CosineDecay(keras.callbacks.Callback):
    """Set the optimizer's learning rate before every batch to lr0 * (1 + cos(pi * t / T)) / 2,
    t the batch index over the whole run and T = epochs x steps per epoch: from the rate the
    model was compiled with down to zero at the last planned batch. Early stopping that ends
    the run sooner ends it before the rate reaches zero (the restored best weights do not
    depend on it); either way the compiled rate is put back when training ends."""

    def __init__(self):
        super().__init__()
        self._lr0: float | None = None
        self._total = 1
        self._step = 0

    def on_train_begin(self, logs=None):
        self._lr0 = float(keras.backend.get_value(self.model.optimizer.learning_rate))
        steps = self.params.get("steps") or 1
        self._total = max(1, int(steps) * int(self.params.get("epochs") or 1))
        self._step = 0

    def on_train_batch_begin(self, batch, logs=None):
        lr = self._lr0 * 0.5 * (1.0 + math.cos(math.pi * min(self._step, self._total) / self._total))
        keras.backend.set_value(self.model.optimizer.learning_rate, lr)
        self._step += 1

    def on_train_end(self, logs=None):
        if self._lr0 is not None:
            keras.backend.set_value(self.model.optimizer.learning_rate, self._lr0)


def schedule_callbacks(lr_schedule: str) -> list:
    """The callbacks that apply `lr_schedule` (one of training.LR_SCHEDULES) to a fit."""
    check_lr_schedule(lr_schedule)
    return [CosineDecay()] if lr_schedule == "cosine" else []
