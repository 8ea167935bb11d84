"""`tinyprune prune`: one command, many methods; this module only parses and routes.

The options of every method are declared here so that `tinyprune prune --help` shows them
all; each method's work is in its own handler module (`prune_<kind>.py`) with a `handle(opts)`
function that calls the library. A budget option (`--flash-budget`, `--ram-budget`,
`--latency-budget`, `--board`) routes to the budget search whatever the method.
"""

from __future__ import annotations

import importlib

import click

from tinyprune.errors import ConfigError

# method -> handler module
HANDLERS = {
    "magnitude": "tinyprune.cli.prune_magnitude",
    "structured": "tinyprune.cli.prune_structured",
    "synflow": "tinyprune.cli.prune_init",
    "snip": "tinyprune.cli.prune_init",
    "grasp": "tinyprune.cli.prune_init",
    "magnitude-init": "tinyprune.cli.prune_init",
    "random-init": "tinyprune.cli.prune_init",
    "imp": "tinyprune.cli.prune_init",
}
BUDGET_HANDLER = "tinyprune.cli.prune_budget"
BUDGET_OPTIONS = ("flash_budget", "ram_budget", "latency_budget", "board")
BUDGET_ONLY = {"margin": "--margin", "boards_file": "--boards-file", "allow_compress": "--allow-compress"}


@click.command("prune")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--method", type=click.Choice(sorted(HANDLERS)), default="magnitude", show_default=True,
              help="Pruning method.")
@click.option("--data", "data", default=None, help="'digits' or a .npz (x_train,y_train,x_val,y_val or x,y).")
@click.option("--epochs", type=int, default=2, show_default=True, help="Fine-tuning / training epochs.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("-o", "--output", "output", required=True, help="Output folder.")
@click.option("--force", is_flag=True, help="Overwrite an existing output folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--unsafe-load", is_flag=True, help="Allow Lambda layers / custom objects (runs code from the file).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
# structured filter removal
@click.option("--ratio", type=float, default=None, help="[structured] Fraction of channels to remove, in [0, 1).")
@click.option("--importance", type=click.Choice(["l1", "l2", "bn", "taylor", "random"]), default="l1",
              show_default=True, help="[structured] Channel importance criterion.")
@click.option("--reduction", type=click.Choice(["sum", "mean", "max"]), default="mean", show_default=True,
              help="[structured] How importance is reduced over a coupled group.")
@click.option("--global-ranking", is_flag=True, help="[structured] Rank channels across layers, not per layer.")
@click.option("--layer-ratio", multiple=True, help="[structured] Per-layer ratio, NAME=R (repeatable).")
@click.option("--round-to", type=int, default=1, show_default=True, help="[structured] Keep channel counts multiples of N.")
@click.option("--ignore", multiple=True, help="[structured] Layer to leave untouched (repeatable).")
@click.option("--steps", type=int, default=1, show_default=True, help="[structured] Iterative pruning steps.")
# magnitude schedules (tfmot)
@click.option("--schedule", type=click.Choice(["polynomial", "constant"]), default="polynomial", show_default=True,
              help="[magnitude] tfmot pruning schedule.")
@click.option("--sparsity", "final_sparsity", type=float, default=0.5, show_default=True,
              help="[magnitude] Final (target) sparsity in [0, 1).")
@click.option("--initial-sparsity", type=float, default=0.0, show_default=True, help="[magnitude] PolynomialDecay start.")
@click.option("--begin-step", type=int, default=0, show_default=True, help="[magnitude] First pruning step.")
@click.option("--end-step", type=int, default=-1, show_default=True, help="[magnitude] Last pruning step (-1: end of training).")
@click.option("--frequency", type=int, default=None, help="[magnitude] Steps between mask updates (default: auto).")
@click.option("--power", type=float, default=3.0, show_default=True, help="[magnitude] PolynomialDecay exponent.")
@click.option("--layer-sparsity", multiple=True, help="[magnitude] Per-layer target, NAME=S (repeatable).")
@click.option("--sparsity-config", default=None, help="[magnitude] TOML file mapping layer names to sparsity.")
@click.option("--m-by-n", default=None, help="[magnitude] Structured M:N sparsity, e.g. 2:4.")
@click.option("--block-size", default=None, help="[magnitude] Block sparsity for Dense, e.g. 1x4.")
@click.option("--pqat", is_flag=True, help="[magnitude] Pruning-preserving quantization-aware training.")
@click.option("--tensorboard", default=None, help="[magnitude] Write tfmot PruningSummaries to this folder.")
@click.option("--compress", type=click.Choice(["none", "prune", "lut", "auto"]), default="none", show_default=True,
              help="[magnitude] Compression TFLM decodes (experimental on Cortex-M): prune = bitmask + non-zero "
                   "values (lossless), lut = cluster to 2^bits values per channel + LUT, auto = cluster, then the "
                   "smaller of the two per tensor.")
@click.option("--bits", type=int, default=4, show_default=True, help="[magnitude] LUT index bits, 2..7.")
# pruning before training
@click.option("--compression", type=float, default=None, help="[at-init] Compression ratio rho >= 1 (kept = 1/rho).")
@click.option("--rounds", type=int, default=None, help="[at-init] Pruning rounds (SynFlow default 100, IMP 5).")
@click.option("--rewind-epoch", type=int, default=0, show_default=True, help="[imp] Rewind to this epoch's weights.")
@click.option("--allow-collapse", is_flag=True, help="[at-init] Continue when a layer loses every weight.")
# budgets
@click.option("--flash-budget", default=None, help="[budget] Flash for the model: 96KB, 0.5MB, 50%%, 12000.")
@click.option("--ram-budget", default=None, help="[budget] RAM (arena + overhead): 64KB, 50%%.")
@click.option("--latency-budget", default=None, help="[budget] Latency in ms on --board.")
@click.option("--board", default=None, help="[budget] Fit this board (its flash and SRAM less the runtime).")
@click.option("--boards-file", default=None, help="[budget] Extra board profiles (TOML).")
@click.option("--margin", type=float, default=0.0, show_default=True, help="[budget] Safety margin as a fraction of the budget.")
@click.option("--allow-compress", is_flag=True, help="[budget] Allow magnitude + LUT compression if removal alone misses.")
def prune(**opts) -> None:
    """Prune MODEL and write OUT/ (pruned Keras model, int8 .tflite, report.json)."""
    if any(opts.get(k) for k in BUDGET_OPTIONS):
        module = BUDGET_HANDLER
    else:
        unused = [flag for key, flag in BUDGET_ONLY.items() if opts.get(key)]
        if unused:
            verb = "applies" if len(unused) == 1 else "apply"
            raise ConfigError(f"{', '.join(unused)} {verb} only with a budget (--flash-budget, --ram-budget, "
                              "--latency-budget or --board); remove it or add a budget")
        module = HANDLERS[opts["method"]]
    try:
        handler = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            raise click.UsageError(f"method {opts['method']!r} is not available in this build") from None
        raise
    handler.handle(opts)
