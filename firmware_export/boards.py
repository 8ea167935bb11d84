"""Board profiles: load the shipped `boards.toml` (plus a user's file) and pick boards by name.

A profile says what a model must fit into (flash and SRAM, total and usable) and what it runs
on (core family, clock, kernel library). This module only reads and validates profiles; it
does not estimate anything (`estimate.py` does). Every malformed profile is reported in one
line that names the file, the board and the field; an unknown name gets the nearest names.

Example:
    >>> boards = load_boards()
    >>> [b.name for b in select_boards(boards, ["nano33"], False)]   # doctest: +SKIP
    BoardError: unknown board 'nano33'; nearest: arduino-nano-33-ble, ...
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from firmware_export.errors import BoardError, ConfigError

BOARDS_FILE = Path(__file__).with_name("boards.toml")

KB = 1024  # board memories are quoted in binary kilobytes, as linker maps and datasheets do

CORES = ("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m4f", "cortex-m7",
         "cortex-m33", "cortex-m55", "cortex-m85")
KERNELS = ("cmsis-nn", "reference")

# Used when no board is named: one board per common class (M4F BLE, M0+, M4F big RAM, M7).
DEFAULT_BOARDS = ("arduino-nano-33-ble", "rpi-pico", "nucleo-l4r5zi", "stm32f746g-disco")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_REQUIRED = ("name", "core", "clock_mhz", "flash_kb", "sram_kb")
_OPTIONAL = ("title", "mcu", "usable_flash_kb", "usable_sram_kb", "kernels", "source")
_NUMBERS = ("clock_mhz", "flash_kb", "sram_kb", "usable_flash_kb", "usable_sram_kb")
_SUGGESTIONS = 3  # nearest names offered for an unknown board
# Upper bounds that no microcontroller reaches (a typo or a hostile file otherwise overflows the
# estimates): 10 GHz clock, 16 GiB of flash or SRAM.
_MAX_VALUE = {"clock_mhz": 10_000.0, "flash_kb": float(1 << 24), "sram_kb": float(1 << 24),
              "usable_flash_kb": float(1 << 24), "usable_sram_kb": float(1 << 24)}


@dataclass(frozen=True)
class Board:
    """One board profile. Sizes are KiB as written in the profile; *_bytes give bytes."""

    name: str
    core: str
    clock_mhz: float
    flash_kb: float
    sram_kb: float
    usable_flash_kb: float | None = None
    usable_sram_kb: float | None = None
    kernels: str = "cmsis-nn"
    title: str = ""
    mcu: str = ""
    source: str = ""

    @property
    def flash_bytes(self) -> int:
        """Flash a program may use (usable if given, else total)."""
        return int((self.usable_flash_kb or self.flash_kb) * KB)

    @property
    def sram_bytes(self) -> int:
        """SRAM the arena, interpreter and stack may use (usable if given, else total)."""
        return int((self.usable_sram_kb or self.sram_kb) * KB)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in (*_REQUIRED, *_OPTIONAL)}


def _where(source: str, index: int, raw: dict) -> str:
    name = raw.get("name") if isinstance(raw.get("name"), str) else None
    return f"{source}: board {name!r}" if name else f"{source}: board #{index + 1}"


def _board_from(raw: object, index: int, source: str) -> Board:
    """Validate one [[board]] table; raises BoardError naming the board and field."""
    if not isinstance(raw, dict):
        raise BoardError(f"{source}: board #{index + 1} is not a table; write each board as [[board]] with key = value lines")
    where = _where(source, index, raw)
    for key in raw:
        if key not in _REQUIRED and key not in _OPTIONAL:
            near = difflib.get_close_matches(key, _REQUIRED + _OPTIONAL, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else f"; known fields: {', '.join(_REQUIRED + _OPTIONAL)}"
            raise BoardError(f"{where}: unknown field {key!r}{hint}")
    for key in _REQUIRED:
        if key not in raw:
            raise BoardError(f"{where}: missing field {key!r} (required: {', '.join(_REQUIRED)})")
    if not isinstance(raw["name"], str) or not _NAME.fullmatch(raw["name"].strip()):
        raise BoardError(f"{where}: field 'name' must be letters, digits, '-', '_' or '.' (no spaces), "
                         f"got {raw['name']!r}")
    for key in _NUMBERS:
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not v > 0:
                raise BoardError(f"{where}: field {key!r} must be a finite positive number, got {v!r}")
            if v > _MAX_VALUE[key]:
                raise BoardError(f"{where}: field {key!r} = {v!r} is larger than any microcontroller "
                                 f"(limit {_MAX_VALUE[key]:g}); check the unit (KiB, MHz)")
    core = raw["core"]
    if not isinstance(core, str) or core.lower() not in CORES:
        raise BoardError(f"{where}: field 'core' must be one of {', '.join(CORES)}, got {core!r}")
    kernels = raw.get("kernels", "cmsis-nn")
    if not isinstance(kernels, str) or kernels.lower() not in KERNELS:
        raise BoardError(f"{where}: field 'kernels' must be one of {', '.join(KERNELS)}, got {kernels!r}")
    for usable, total in (("usable_flash_kb", "flash_kb"), ("usable_sram_kb", "sram_kb")):
        if usable in raw and raw[usable] > raw[total]:
            raise BoardError(f"{where}: field {usable!r} ({raw[usable]}) is larger than {total!r} ({raw[total]})")
    for key in ("title", "mcu", "source"):
        if key in raw and not isinstance(raw[key], str):
            raise BoardError(f"{where}: field {key!r} must be a string, got {raw[key]!r}")
    return Board(
        name=raw["name"].strip().lower(), core=core.lower(), clock_mhz=float(raw["clock_mhz"]),
        flash_kb=float(raw["flash_kb"]), sram_kb=float(raw["sram_kb"]),
        usable_flash_kb=float(raw["usable_flash_kb"]) if "usable_flash_kb" in raw else None,
        usable_sram_kb=float(raw["usable_sram_kb"]) if "usable_sram_kb" in raw else None,
        kernels=kernels.lower(), title=raw.get("title", raw["name"]), mcu=raw.get("mcu", ""),
        source=raw.get("source", ""),
    )


def parse_boards(text: str, source: str = "<boards>") -> list[Board]:
    """Parse the text of a boards TOML file (a `[[board]]` array of tables)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BoardError(f"{source} is not valid TOML ({e}); see firmware_export/boards.toml for the format") from None
    tables = doc.get("board")
    if not isinstance(tables, list) or not tables:
        raise BoardError(f"{source} has no [[board]] tables; see firmware_export/boards.toml for the format")
    boards = [_board_from(raw, i, source) for i, raw in enumerate(tables)]
    seen: set[str] = set()
    for b in boards:
        if b.name in seen:
            raise BoardError(f"{source}: board {b.name!r} is defined twice; give each board a unique name")
        seen.add(b.name)
    return boards


def read_boards_file(boards_file: str | Path) -> list[Board]:
    """The boards defined in a user's TOML file, validated, in file order."""
    from firmware_export.files import read_user_text

    text = read_user_text(boards_file, "boards file", "a TOML file with [[board]] tables")
    return parse_boards(text, str(boards_file))


def load_boards(boards_file: str | Path | None = None) -> dict[str, Board]:
    """The shipped profiles, plus (and overridden by) those in `boards_file`, keyed by name."""
    boards = {b.name: b for b in parse_boards(BOARDS_FILE.read_text(), str(BOARDS_FILE.name))}
    if boards_file is not None:
        boards.update({b.name: b for b in read_boards_file(boards_file)})
    return boards


def suggest(name: str, names: list[str]) -> list[str]:
    """Nearest board names to `name` (by difflib similarity, then by substring)."""
    key = name.lower()
    near = difflib.get_close_matches(key, names, n=_SUGGESTIONS, cutoff=0.4)
    near += [n for n in names if key and key in n and n not in near]
    return near[:_SUGGESTIONS]


def select_boards(boards: dict[str, Board], names: list[str] | None, all_boards: bool) -> list[Board]:
    """Boards by name (case-insensitive), all of them, or DEFAULT_BOARDS when none is named."""
    if names and all_boards:
        raise ConfigError("give board names or --all, not both")
    if all_boards:
        return list(boards.values())
    wanted = list(names) if names else [n for n in DEFAULT_BOARDS if n in boards]
    chosen = []
    for name in wanted:
        board = boards.get(name.strip().lower())
        if board is None:
            near = suggest(name, list(boards))
            hint = f"; nearest: {', '.join(near)}" if near else ""
            raise BoardError(f"unknown board {name!r}{hint} (list them with: tinyprune boards)")
        if board not in chosen:
            chosen.append(board)
    if not chosen:
        raise BoardError("no boards to check; name one with --board or use --all")
    return chosen
