"""What each pruning method is asked to do: one typed settings object per method kind.

The CLI subcommands and the `[prune]` section of a `run` config both build one of these, so a
method reads the same fields whichever door the user came in by. `check()` rejects values that
cannot work before any model is loaded (and before TensorFlow is imported). This module holds
settings and their checks; it runs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from tinyprune.errors import ConfigError, DataError
from tinyprune.prune.magnitude import Schedule
from tinyprune.prune.methods import METHODS, Method
from tinyprune.training.limits import check_training_args

_SCHEDULE = Schedule()

PRUNE_BREAK_EVEN = 1 / 8  # TFLM's PRUNE stores 1 mask bit per int8 weight (firmware_export.tflm_prune)


@dataclass(frozen=True)
class TrainSettings:
    """Fine-tuning / training after (or during) pruning."""

    epochs: int = 2
    batch_size: int = 32
    seed: int | None = None  # run under training.reproducible(seed); None = not seeded

    def check(self) -> None:
        check_training_args(self.epochs, self.batch_size, what="--epochs")


@dataclass(frozen=True)
class StructuredSettings:
    """Filter removal (`tinyprune.prune.structured.prune_structured`)."""

    ratio: float | None = None
    layer_ratios: dict[str, float] = field(default_factory=dict)
    importance: str = "l1"
    reduction: str = "mean"
    global_ranking: bool = False
    ignore: tuple[str, ...] = ()
    round_to: int = 1
    steps: int = 1
    method: str = "structured"

    def check(self, has_data: bool, train: TrainSettings) -> None:
        if self.ratio is None and not self.layer_ratios:
            raise ConfigError("structured pruning needs --ratio R (fraction of channels to remove, in [0, 1)) "
                              "or --layer-ratio NAME=R")
        if self.ratio is not None and not 0.0 <= self.ratio < 1.0:
            raise ConfigError(f"--ratio must be in [0, 1) (the fraction of channels to remove), got {self.ratio}")
        from tinyprune.prune import check_reduction, check_round_to

        check_round_to(self.round_to)
        if self.steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {self.steps}")
        from tinyprune.prune.structured.importance import IMPORTANCES  # the registry (no TensorFlow)

        if self.importance not in IMPORTANCES:
            raise ConfigError(f"unknown importance {self.importance!r}; use one of {', '.join(IMPORTANCES)}")
        check_reduction(self.reduction)


@dataclass(frozen=True)
class MagnitudeSettings:
    """tfmot magnitude pruning (`tinyprune.prune.magnitude`) and the compression TFLM decodes."""

    final_sparsity: float = _SCHEDULE.final_sparsity  # the schedule's defaults live in tinyprune.prune.magnitude
    initial_sparsity: float = _SCHEDULE.initial_sparsity
    schedule: str = _SCHEDULE.kind
    begin_step: int = _SCHEDULE.begin_step
    end_step: int = _SCHEDULE.end_step
    frequency: int | None = _SCHEDULE.frequency
    power: float = _SCHEDULE.power
    layer_sparsity: tuple[str, ...] = ()
    sparsity_config: str | None = None
    m_by_n: str | None = None
    block_size: str | None = None
    pqat: bool = False
    tensorboard: str | None = None
    compress: str = "none"  # none | prune | lut | auto
    bits: int = 4
    method: str = "magnitude"

    def prune_options(self):
        """The library's `PruneOptions` (parses per-layer targets, M:N and block size)."""
        from tinyprune.prune.magnitude import PruneOptions, Schedule, parse_block_size, parse_layer_targets, \
            parse_m_by_n

        schedule = Schedule(kind=self.schedule, initial_sparsity=self.initial_sparsity,
                            final_sparsity=self.final_sparsity, begin_step=self.begin_step, end_step=self.end_step,
                            frequency=self.frequency, power=self.power)
        schedule.validate()
        return PruneOptions(schedule=schedule,
                            layer_targets=parse_layer_targets(tuple(self.layer_sparsity), self.sparsity_config),
                            m_by_n=parse_m_by_n(self.m_by_n), block_size=parse_block_size(self.block_size),
                            pqat=self.pqat, tensorboard_dir=self.tensorboard)

    def check(self, has_data: bool, train: TrainSettings) -> None:
        from firmware_export.compress import check_method
        from firmware_export.lut import check_bits

        self.prune_options()
        check_bits(self.bits)
        if self.compress != "none":
            check_method(self.compress, self.bits)
        if self.compress == "prune" and self.final_sparsity <= PRUNE_BREAK_EVEN and not self.layer_sparsity \
                and not self.sparsity_config:
            raise ConfigError(f"--compress prune saves flash only above {PRUNE_BREAK_EVEN:.1%} sparsity (the mask "
                              f"costs 1 bit per weight); got --sparsity {self.final_sparsity}")
        if not has_data:
            raise ConfigError("magnitude pruning fine-tunes the model: give --data (digits or a .npz)")
        if train.epochs < 1:
            raise ConfigError(f"magnitude pruning needs --epochs of at least 1, got {train.epochs}")


@dataclass(frozen=True)
class AtInitSettings:
    """Pruning at initialization (SynFlow, SNIP, GraSP, magnitude, random) or IMP (lottery tickets)."""

    method: str = "synflow"
    compression: float | None = None
    rounds: int | None = None  # None: the method's default (tinyprune.prune.methods)
    allow_collapse: bool = False
    rewind_epoch: int = 0  # IMP only

    @property
    def spec(self) -> Method:
        return METHODS[self.method]

    @property
    def resolved_rounds(self) -> int:
        return self.spec.default_rounds if self.rounds is None else int(self.rounds)

    def check(self, has_data: bool, train: TrainSettings) -> None:
        method, rho = self.method, self.compression
        if method not in METHODS or METHODS[method].kind not in ("at_init", "imp"):
            known = ", ".join(n for n, m in METHODS.items() if m.kind in ("at_init", "imp"))
            raise ConfigError(f"{method!r} is not a method that prunes at initialization; use one of {known}")
        if self.rewind_epoch and self.spec.kind != "imp":
            raise ConfigError(f"--rewind-epoch applies to `tinyprune prune imp`, not `{method}`")
        if rho is None:
            raise ConfigError(f"--method {method} needs --compression RHO (>= 1; kept fraction 1/RHO), "
                              "e.g. --compression 10")
        if not rho >= 1.0 or rho == float("inf"):
            raise ConfigError(f"--compression must be >= 1 (kept fraction = 1/compression), got {rho}")
        if self.resolved_rounds < 1:
            raise ConfigError(f"--rounds must be at least 1, got {self.rounds}")
        if self.spec.needs_data and not has_data:
            what = ("trains the network every round" if self.spec.kind == "imp"
                    else "scores weights with a batch of training data")
            raise DataError(f"--method {method} {what}; give --data (digits or a .npz)")
        if self.spec.kind == "imp":
            if train.epochs < 1:
                raise ConfigError(f"--method imp trains every round; --epochs must be >= 1, got {train.epochs}")
            if not 0 <= self.rewind_epoch <= train.epochs:
                raise ConfigError(f"--rewind-epoch must be in 0..{train.epochs} (the epochs of one round), "
                                  f"got {self.rewind_epoch}")


Settings = Union[StructuredSettings, MagnitudeSettings, AtInitSettings]


def parse_layer_ratios(items) -> dict[str, float]:
    """{'conv1': 0.5} from ('conv1=0.5', ...); one clear error for a malformed item."""
    out: dict[str, float] = {}
    for item in items or ():
        name, sep, value = str(item).partition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--layer-ratio {item!r}: expected NAME=R, e.g. conv2d=0.5") from None
    return out
