"""Prune: the methods that remove weights or channels from a tf_keras model.

- `magnitude`: tfmot magnitude schedules (unstructured, M:N, block); masks keep every
  tensor's shape, so they shrink flash only through compression TFLM decodes.
- `clustering`: sparsity-preserving weight clustering (for TFLM's LUT compression).
- `structured/`: dependency graph, channel importance, filter removal (a physically smaller model).
- `at_init/`: pruning before training (SNIP, GraSP, SynFlow, IMP / lottery tickets).

Each method takes a model and returns a result dataclass; none of them quantizes, measures
or writes files (the pipeline does).

`CRITERIA` names the built-in channel importance criteria of `structured/importance.py` (its
registry `IMPORTANCES` has these and any registered later); it is here, without TensorFlow, for
the CLI's choices, as is `REDUCTIONS`, how a group's per-layer scores are combined.
"""

CRITERIA = ("l1", "l2", "bn", "taylor", "random")
REDUCTIONS = ("sum", "mean", "max")


def check_reduction(reduction: str) -> None:
    """ConfigError unless `reduction` is one of REDUCTIONS."""
    from tinyprune.errors import ConfigError

    if reduction not in REDUCTIONS:
        raise ConfigError(f"unknown reduction {reduction!r}; use one of {', '.join(REDUCTIONS)}")


def check_round_to(round_to: int) -> None:
    """ConfigError unless channel counts can be rounded to multiples of `round_to` (a whole number >= 1)."""
    from tinyprune.errors import ConfigError

    if isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1:
        raise ConfigError(f"--round-to must be a whole number >= 1, got {round_to!r}")
