"""Iterative Magnitude Pruning with rewinding: finding lottery tickets (Frankle & Carbin 2019).

    store the rewind point W_r (the initial weights, or the weights after `rewind_epoch`
    epochs of the first training: "late resetting", Frankle et al. 2019/2020)
    repeat n rounds:
        train the masked network for `epochs`
        prune p of the surviving weights by |w|, globally over all prunable layers
        rewind: every weight (kernels, biases, BatchNorm) back to W_r, pruned ones zeroed
    train the final ticket for `epochs` (optional)

p is chosen so that n rounds reach the compression rho exactly: the kept fraction after round
k is rho^(-k/n), i.e. p = 1 - rho^(-1/n) of the survivors each round. The optimizer is fresh
(re-compiled) every round. Masks hold through every training (`masks.MaskCallback`), and the
layer-collapse guard runs after every pruning step. The model's current weights are the
initialization (it is not re-initialized).

This module trains and prunes; it does not write files (outputs.py) or parse options (cli/).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rich.console import Console

from tinyprune.prune.at_init import masks as masklib
from tinyprune.load.data import Dataset
from tinyprune.prune.methods import IMP_ROUNDS
from tinyprune.errors import ConfigError
from tinyprune.prune.at_init.pruner import exponential_schedule
from tinyprune.prune.at_init.scores import magnitude_scores, prunable_layers
from tinyprune.tfsetup import keras



@dataclass
class LotteryRound:
    round: int
    trained_at_compression: float  # the network trained in this round
    val_score: float  # its validation score (accuracy for classes) before pruning
    compression: float  # reached by this round's pruning step
    kept_fraction: float


@dataclass
class LotteryResult:
    """The ticket (masks + rewound weights) and, if trained, the trained sparse model."""

    model: object  # the final model: trained ticket, or the rewound ticket if train_final=False
    masks: masklib.Masks
    compression: float
    rounds: int
    rewind_epoch: int
    rewind_weights: list[np.ndarray]  # the stored rewind point W_r (model.get_weights() order)
    ticket_kernels: dict[str, np.ndarray]  # prunable kernels right after the last rewind
    history: list[LotteryRound] = field(default_factory=list)
    final_score: float | None = None
    collapsed: list[str] = field(default_factory=list)

    @property
    def kept_fraction(self) -> float:
        return masklib.kept_fraction(self.masks)


def prune_fraction_per_round(compression: float, rounds: int) -> float:
    """Fraction p of the surviving weights removed each round so that n rounds reach rho."""
    return 1.0 - exponential_schedule(compression, rounds)[0] ** -1.0


class _Checkpoint(keras.callbacks.Callback):
    """Copies the model's weights at the end of epoch `epoch` (1-based)."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch, self.weights = epoch, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            self.weights = [w.copy() for w in self.model.get_weights()]


def validate(compression: float, rounds: int, epochs: int, rewind_epoch: int) -> None:
    """Check IMP settings before any work (ConfigError with one line)."""
    exponential_schedule(compression, rounds)
    if epochs < 1:
        raise ConfigError(f"iterative magnitude pruning trains every round; --epochs must be >= 1, got {epochs}")
    if rewind_epoch < 0 or rewind_epoch > epochs:
        raise ConfigError(f"--rewind-epoch must be in 0..{epochs} (the epochs of one round), got {rewind_epoch}")


def rewind(model, rewind_weights: list[np.ndarray], masks: masklib.Masks) -> None:
    """Set every weight back to the rewind point and zero the pruned kernels."""
    model.set_weights(rewind_weights)
    masklib.apply_masks(model, masks)


def lottery_ticket(model, ds: Dataset, compression: float, rounds: int = IMP_ROUNDS, epochs: int = 2,
                   rewind_epoch: int = 0, batch_size: int = 32, allow_collapse: bool = False,
                   train_final: bool = True, quiet: bool = False) -> LotteryResult:
    """Run IMP with rewinding on `model` (modified in place); see the module docstring."""
    validate(compression, rounds, epochs, rewind_epoch)
    schedule = exponential_schedule(compression, rounds)
    console = Console(stderr=True, quiet=quiet)
    ds = ds.fit_to(model.input_shape)
    masks = masklib.full_masks(model)
    rewind_weights = [w.copy() for w in model.get_weights()]
    history, collapsed, trained_at = [], [], 1.0
    p = prune_fraction_per_round(compression, rounds)
    console.print(f"[bold]IMP[/]: {rounds} rounds x {epochs} epochs, pruning {p:.1%} of survivors per round, "
                  f"rewind to {'initial weights' if rewind_epoch == 0 else f'epoch {rewind_epoch}'}")
    for k, rho_k in enumerate(schedule, start=1):
        ckpt = _Checkpoint(rewind_epoch) if (k == 1 and rewind_epoch > 0) else None
        val = masklib.train_masked(model, ds, masks, epochs, batch_size, f"IMP round {k}/{rounds}", quiet,
                                   (ckpt,) if ckpt else ())
        if ckpt is not None:
            rewind_weights = ckpt.weights
        masks = masklib.global_masks(magnitude_scores(model), rho_k, previous=masks)
        collapsed = masklib.check_collapse(masks, rho_k, allow_collapse)
        rewind(model, rewind_weights, masks)
        history.append(LotteryRound(k, trained_at, val, rho_k, masklib.kept_fraction(masks)))
        console.print(f"round {k}/{rounds}: val {val:.4f} at compression {trained_at:.3g} -> pruned to "
                      f"compression {rho_k:.3g} (kept {history[-1].kept_fraction:.4f}), rewound")
        trained_at = rho_k
    ticket = {n: k.numpy().copy() for n, k in prunable_layers(model).items()}
    final = None
    if train_final:
        final = masklib.train_masked(model, ds, masks, epochs, batch_size, "IMP final ticket", quiet)
        console.print(f"final ticket: val {final:.4f} at compression {compression:.3g}")
    return LotteryResult(model, masks, float(compression), rounds, rewind_epoch, rewind_weights, ticket,
                         history, final, collapsed)
