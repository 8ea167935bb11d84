"""The `tinyprune run` configuration: a TOML file read into a dataclass, with validation.

Missing keys take the bundled defaults (`default_run.toml`); unknown sections or keys, and
values of the wrong type, are an error (a typo must not silently fall back to a default).
Model and data paths are resolved against the config file's folder; the output folder is
relative to the current directory. This module reads configuration; it runs nothing.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from tinyprune.errors import ConfigError, InputFileError
from tinyprune.pipeline.settings import MagnitudeSettings
from tinyprune.training.limits import MAX_BATCH_SIZE, MAX_EPOCHS
from tinyprune.prune.methods import METHODS

DEFAULT_CONFIG = Path(__file__).with_name("default_run.toml")
BUNDLED_DIR = Path(__file__).parent  # package data: the demo model ships here (a link to models/ in a checkout)
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ModelSection:
    path: str = "models/digits_cnn.h5"
    unsafe_load: bool = False


@dataclass
class DataSection:
    source: str = "digits"


@dataclass
class PruneSection:
    """[prune]: the method (any of `tinyprune.prune.methods.METHODS`) and its keys."""

    method: str = "magnitude"
    epochs: int = 4
    batch_size: int = 32
    seed: int = 0  # training.reproducible: shuffles, inits and TF op determinism; negative = not seeded
    # magnitude
    initial_sparsity: float = MagnitudeSettings.initial_sparsity
    final_sparsity: float = MagnitudeSettings.final_sparsity
    # structured (and the budget search's channel selection)
    ratio: float = 0.5
    importance: str = "l1"
    round_to: int = 1
    # pruning at init and imp
    compression: float = 10.0
    rounds: int = 0  # 0: the method's default
    # budget: any of these makes the search meet it ("" = no limit)
    flash_budget: str = ""
    ram_budget: str = ""
    latency_budget: str = ""
    board: str = ""

    def settings(self):
        """(the method's settings object, TrainSettings); the budget search returns a BudgetRequest."""
        from tinyprune.pipeline.settings import AtInitSettings, MagnitudeSettings, StructuredSettings, TrainSettings

        train = TrainSettings(self.epochs, self.batch_size, None if self.seed < 0 else self.seed)
        kind = METHODS[self.method].kind
        if kind == "magnitude":
            return MagnitudeSettings(final_sparsity=self.final_sparsity, initial_sparsity=self.initial_sparsity), train
        if kind == "structured":
            return StructuredSettings(ratio=self.ratio, importance=self.importance, round_to=self.round_to), train
        if kind == "budget":
            return BudgetRequest(self.flash_budget or None, self.ram_budget or None, self.latency_budget or None,
                                 self.board or None, self.importance, self.round_to), train
        return AtInitSettings(self.method, self.compression, self.rounds or None), train


# the [prune] keys each method kind reads (besides method, epochs, batch_size)
METHOD_KEYS = {"magnitude": {"initial_sparsity", "final_sparsity"},
               "structured": {"ratio", "importance", "round_to"},
               "at_init": {"compression", "rounds"}, "imp": {"compression", "rounds"},
               "budget": {"flash_budget", "ram_budget", "latency_budget", "board", "importance", "round_to"}}


@dataclass(frozen=True)
class BudgetRequest:
    """[prune] method = "budget": what `tinyprune.budget.search.prune_for_budget` is asked."""

    flash_budget: str | None
    ram_budget: str | None
    latency_budget: str | None
    board: str | None
    importance: str = "l1"
    round_to: int = 1


@dataclass
class QuantizeSection:
    calibration_samples: int = 300
    io_type: str = "int8"
    qat_epochs: int = 0  # > 0: pruning-preserving quantization-aware training for this many epochs


@dataclass
class ExportSection:
    name: str = "digits"


@dataclass
class FitSection:
    boards: list[str] = field(default_factory=list)


@dataclass
class OutputSection:
    dir: str = "out/demo"


@dataclass
class RunConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    prune: PruneSection = field(default_factory=PruneSection)
    quantize: QuantizeSection = field(default_factory=QuantizeSection)
    export: ExportSection = field(default_factory=ExportSection)
    fit: FitSection = field(default_factory=FitSection)
    output: OutputSection = field(default_factory=OutputSection)
    base_dir: Path = field(default=REPO_ROOT)

    def resolve(self, p: str) -> Path:
        """A path from the config: absolute, relative to the config's folder, in the repository's
        models/ folder, or (`models/digits_cnn.h5`, the demo) the copy installed with the package."""
        path = Path(p)
        if path.is_absolute():
            return path
        for candidate in (self.base_dir / path, REPO_ROOT / path):
            if candidate.exists():
                return candidate
        if path.parent == Path("models") and (BUNDLED_DIR / path.name).is_file():
            return BUNDLED_DIR / path.name
        return self.base_dir / path

    def data_source(self) -> str:
        return self.data.source if self.data.source == "digits" else str(self.resolve(self.data.source))


_SECTION_CLASSES = {"model": ModelSection, "data": DataSection, "prune": PruneSection,
                    "quantize": QuantizeSection, "export": ExportSection, "fit": FitSection,
                    "output": OutputSection}


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        raise InputFileError(f"{path}: no such config file; give a TOML file or no argument for the demo")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None


def _merge(defaults: dict, user: dict, source: Path) -> dict:
    out = {k: dict(v) for k, v in defaults.items()}
    for section, values in user.items():
        if section not in _SECTION_CLASSES or not isinstance(values, dict):
            raise ConfigError(f"{source}: unknown section [{section}]; known: {', '.join(_SECTION_CLASSES)}")
        known = {f.name for f in fields(_SECTION_CLASSES[section])}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{source}: unknown key '{key}' in [{section}]; known: {', '.join(sorted(known))}")
            out.setdefault(section, {})[key] = value
    return out


def load_config(path: str | Path | None = None) -> RunConfig:
    """The bundled default config, overlaid with `path` if given."""
    defaults = _read_toml(DEFAULT_CONFIG)
    merged = defaults if path is None else _merge(defaults, _read_toml(Path(path)), Path(path))
    base = REPO_ROOT if path is None else Path(path).resolve().parent
    try:
        sections = {name: cls(**merged.get(name, {})) for name, cls in _SECTION_CLASSES.items()}
    except TypeError as e:
        raise ConfigError(f"bad configuration: {e}") from None
    cfg = RunConfig(**sections, base_dir=base)
    validate(cfg)
    return cfg


def _check_types(cfg: RunConfig) -> None:
    """Each key must have the type of its default (a TOML typo like boards = "x" is an error)."""
    for name, cls in _SECTION_CLASSES.items():
        section, default = getattr(cfg, name), cls()
        for f in fields(cls):
            value, want = getattr(section, f.name), type(getattr(default, f.name))
            ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                ok = True
            if want is list:
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            if not ok:
                raise ConfigError(f"[{name}] {f.name} must be {'a list of strings' if want is list else want.__name__}, "
                                  f"got {value!r}")


def validate(cfg: RunConfig) -> None:
    _check_types(cfg)
    p = cfg.prune
    if p.method not in METHODS:
        raise ConfigError(f"[prune] method {p.method!r} is unknown; use one of {', '.join(METHODS)}")
    kind = METHODS[p.method].kind
    default = PruneSection()
    stray = [f.name for f in fields(PruneSection) if f.name not in ("method", "epochs", "batch_size", "seed")
             and f.name not in METHOD_KEYS[kind] and getattr(p, f.name) != getattr(default, f.name)]
    if stray:
        raise ConfigError(f"[prune] {', '.join(stray)} do{'es' if len(stray) == 1 else ''} not apply to method "
                          f"{p.method!r}; it reads {', '.join(sorted(METHOD_KEYS[kind]))}")
    if isinstance(p.epochs, bool) or not isinstance(p.epochs, int) or not 1 <= p.epochs <= MAX_EPOCHS:
        raise ConfigError(f"[prune] epochs must be a whole number in [1, {MAX_EPOCHS}], got {p.epochs!r}")
    if isinstance(p.batch_size, bool) or not isinstance(p.batch_size, int) or not 1 <= p.batch_size <= MAX_BATCH_SIZE:
        raise ConfigError(f"[prune] batch_size must be a whole number in [1, {MAX_BATCH_SIZE}], got {p.batch_size!r}")
    settings, train = p.settings()
    if kind == "budget":
        from tinyprune.budget.limits import Budget, check_job

        Budget.parse(settings.flash_budget, settings.ram_budget, settings.latency_budget, settings.board)
        check_job(settings.round_to, True)
    elif kind != "magnitude":
        settings.check(True, train)
    for name, v in (("initial_sparsity", p.initial_sparsity), ("final_sparsity", p.final_sparsity)):
        if not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise ConfigError(f"[prune] {name} must be a number in [0, 1), got {v!r}")
    if p.final_sparsity < p.initial_sparsity:
        raise ConfigError("[prune] final_sparsity must be at least initial_sparsity")
    q = cfg.quantize
    if not isinstance(q.calibration_samples, int) or q.calibration_samples < 1:
        raise ConfigError(f"[quantize] calibration_samples must be >= 1, got {q.calibration_samples!r}")
    if isinstance(q.qat_epochs, bool) or not isinstance(q.qat_epochs, int) or not 0 <= q.qat_epochs <= MAX_EPOCHS:
        raise ConfigError(f"[quantize] qat_epochs must be a whole number >= 0, got {q.qat_epochs!r}")
    if q.io_type not in ("int8", "uint8", "float32"):
        raise ConfigError(f"[quantize] io_type must be int8, uint8 or float32, got {q.io_type!r}")
    if not (cfg.export.name.isascii() and cfg.export.name.isidentifier()):
        raise ConfigError(f"[export] name {cfg.export.name!r} must be a C identifier (letters, digits, _)")
