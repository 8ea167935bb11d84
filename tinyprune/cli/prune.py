"""`tinyprune prune <method> MODEL ...`: one subcommand per pruning method.

    tinyprune prune magnitude  MODEL --sparsity 0.8 [--compress prune] --data D -o OUT
    tinyprune prune structured MODEL --ratio 0.5 [--round-to 4] [--data D] -o OUT
    tinyprune prune synflow|snip|grasp|magnitude-init|random-init MODEL --compression 100 -o OUT
    tinyprune prune imp        MODEL --compression 10 --rounds 5 --data D -o OUT
    tinyprune prune budget     MODEL --flash-budget 25% [--board B] --data D -o OUT

Each subcommand shows only its own options (`tinyprune prune structured --help`). The older
spelling `tinyprune prune MODEL --method M ...` (and `tinyprune prune MODEL --flash-budget ...`,
which always meant the budget search) keeps working: it is rewritten to the subcommand, and an
option that belongs to another method fails with a line that names where it belongs.
This module routes; each subcommand lives in `prune_<kind>.py` and calls the library.
"""

from __future__ import annotations

import click

from tinyprune.errors import ConfigError
from tinyprune.prune.methods import METHODS

# subcommand -> (module, command attribute)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "magnitude": ("tinyprune.cli.prune_magnitude", "magnitude"),
    "structured": ("tinyprune.cli.prune_structured", "structured"),
    "budget": ("tinyprune.cli.prune_budget", "budget"),
    **{name: ("tinyprune.cli.prune_init", "command_" + name.replace("-", "_"))
       for name, m in METHODS.items() if m.kind in ("at_init", "imp")},
}
BUDGET_FLAGS = ("--flash-budget", "--ram-budget", "--latency-budget", "--board")
LEGACY_DEFAULT = "magnitude"  # `tinyprune prune MODEL` without --method has always meant magnitude


def _flags(args: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def _accepted(name: str) -> set[str]:
    cmd = _load(name)
    return {o for p in cmd.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}


def _load(name: str) -> click.Command:
    import importlib

    module, attr = SUBCOMMANDS[name]
    return getattr(importlib.import_module(module), attr)


def _owners(flag: str) -> list[str]:
    return [name for name in SUBCOMMANDS if flag in _accepted(name)]


def legacy_route(args: list[str]) -> list[str]:
    """`MODEL ... [--method M] ...` -> `SUBCOMMAND MODEL ...` (the spelling before subcommands).

    Raises ConfigError for an option that the chosen method does not take, naming the method
    (or budget) it belongs to."""
    rest, method, i = [], None, 0
    while i < len(args):
        a = args[i]
        if a == "--method" and i + 1 < len(args):
            method, i = args[i + 1], i + 2
            continue
        if a.startswith("--method="):
            method, i = a.split("=", 1)[1], i + 1
            continue
        rest.append(a)
        i += 1
    if method is not None and method not in SUBCOMMANDS:
        raise click.BadParameter(f"{method!r} is not one of {', '.join(sorted(SUBCOMMANDS))}", param_hint="'--method'")
    flags = _flags(rest)
    budget = any(f in BUDGET_FLAGS for f in flags)
    target = "budget" if budget else (method or LEGACY_DEFAULT)
    accepted = _accepted(target) | {"--help", "-h"}
    foreign = [f for f in dict.fromkeys(flags) if f not in accepted and _owners(f)]
    if budget and (foreign or method not in (None, "magnitude", "structured")):
        what = ", ".join(foreign) or f"--method {method}"
        raise ConfigError(f"{what} cannot be combined with a budget: the budget search chooses the channels "
                          "itself (it always removes filters); drop it or drop the budget options")
    if foreign:
        order = [o for p in _load("budget").params for o in getattr(p, "opts", [])]
        budget_only = sorted((f for f in foreign if _owners(f) == ["budget"]), key=order.index)
        if budget_only and len(budget_only) == len(foreign):
            verb = "applies" if len(budget_only) == 1 else "apply"
            raise ConfigError(f"{', '.join(budget_only)} {verb} only with a budget (--flash-budget, --ram-budget, "
                              "--latency-budget or --board); remove it or add a budget")
        f = foreign[0]
        raise ConfigError(f"{f} is an option of `tinyprune prune {' / '.join(_owners(f))}`, not of "
                          f"`tinyprune prune {target}`; see tinyprune prune {target} --help")
    return [target, *rest]


class PruneGroup(click.Group):
    """A group whose subcommands load lazily and which also accepts the `--method` spelling."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return _load(name) if name in SUBCOMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Methods"):
            formatter.write_dl([(name, METHODS[name].summary) for name in SUBCOMMANDS])

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((a for a in args if not a.startswith("-")), None)
        if args and args[0] not in SUBCOMMANDS and args[0] not in ("--help", "-h") and first is not None:
            try:
                args = legacy_route(list(args))
            except click.UsageError as e:
                e.ctx = e.ctx or ctx  # the error's help hint then names `tinyprune prune`
                raise
        return super().parse_args(ctx, args)


@click.group("prune", cls=PruneGroup, context_settings={"help_option_names": ["-h", "--help"]})
def prune() -> None:
    """Prune MODEL with one method and write OUT/ (Keras model, int8 .tflite, report.json).

    \b
    The method comes first: tinyprune prune structured MODEL --ratio 0.5 -o OUT
    (the older `tinyprune prune MODEL --method structured ...` still works).
    """
