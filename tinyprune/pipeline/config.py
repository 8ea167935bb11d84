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

DEFAULT_CONFIG = Path(__file__).with_name("default_run.toml")
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
    method: str = "magnitude"
    initial_sparsity: float = 0.0
    final_sparsity: float = 0.5
    epochs: int = 4
    batch_size: int = 32


@dataclass
class QuantizeSection:
    calibration_samples: int = 300
    io_type: str = "int8"
    qat_epochs: int = 0  # > 0: pruning-preserving quantization-aware training for this many epochs


@dataclass
class ExportSection:
    name: str = "model"


@dataclass
class FitSection:
    boards: list[str] = field(default_factory=list)


@dataclass
class OutputSection:
    dir: str = "out/run"


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
        """A path from the config: absolute, relative to the config, or in the repo's models/."""
        path = Path(p)
        if path.is_absolute():
            return path
        here = self.base_dir / path
        if here.exists() or not (REPO_ROOT / path).exists():
            return here
        return REPO_ROOT / path

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
    if p.method != "magnitude":
        raise ConfigError(f"[prune] method {p.method!r} is not supported by `run`; use 'magnitude' "
                          "(other methods: tinyprune prune --method ...)")
    for name, v in (("initial_sparsity", p.initial_sparsity), ("final_sparsity", p.final_sparsity)):
        if not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise ConfigError(f"[prune] {name} must be a number in [0, 1), got {v!r}")
    if p.final_sparsity < p.initial_sparsity:
        raise ConfigError("[prune] final_sparsity must be at least initial_sparsity")
    from tinyprune.training.limits import MAX_BATCH_SIZE, MAX_EPOCHS

    if isinstance(p.epochs, bool) or not isinstance(p.epochs, int) or not 1 <= p.epochs <= MAX_EPOCHS:
        raise ConfigError(f"[prune] epochs must be a whole number in [1, {MAX_EPOCHS}], got {p.epochs!r}")
    if isinstance(p.batch_size, bool) or not isinstance(p.batch_size, int) or not 1 <= p.batch_size <= MAX_BATCH_SIZE:
        raise ConfigError(f"[prune] batch_size must be a whole number in [1, {MAX_BATCH_SIZE}], got {p.batch_size!r}")
    q = cfg.quantize
    if not isinstance(q.calibration_samples, int) or q.calibration_samples < 1:
        raise ConfigError(f"[quantize] calibration_samples must be >= 1, got {q.calibration_samples!r}")
    if isinstance(q.qat_epochs, bool) or not isinstance(q.qat_epochs, int) or not 0 <= q.qat_epochs <= MAX_EPOCHS:
        raise ConfigError(f"[quantize] qat_epochs must be a whole number >= 0, got {q.qat_epochs!r}")
    if q.io_type not in ("int8", "uint8", "float32"):
        raise ConfigError(f"[quantize] io_type must be int8, uint8 or float32, got {q.io_type!r}")
    if not (cfg.export.name.isascii() and cfg.export.name.isidentifier()):
        raise ConfigError(f"[export] name {cfg.export.name!r} must be a C identifier (letters, digits, _)")
