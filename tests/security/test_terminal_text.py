"""Text from a file reaches the terminal with its control characters shown, not sent.

Found on main: a .tflite whose tensor names held `ESC [2J` cleared the screen of `tinyprune
inspect`; a boards file's `mcu` / `source` retitled the terminal in `tinyprune boards`; an error
line naming a file or layer carried ESC and BEL. rich escaped its markup, not these.
"""

from __future__ import annotations

import json
import os

from firmware_export.terminal import escape, printable
from tests.helpers import run_cli, stderr_one_line
from tests.security.mutate import edit

CLEAR = "\x1b[2J\x1b[H"
TITLE = "\x1b]0;pwned\x07"
RTL = "\u202e"  # right-to-left override: shows the rest of the line reversed
RAW = ("\x1b", "\x07", "\x9b", RTL)


def _no_raw(text: str) -> None:
    for ch in RAW:
        assert ch not in text, f"raw {ch!r} reached the terminal: {text[:200]!r}"


def test_printable_shows_every_control_and_bidi_character():
    assert printable(f"a{CLEAR}b{RTL}c\n\x9b\x00") == "a\\x1b[2J\\x1b[Hb\\u202ec\\x0a\\x9b\\x00"
    assert printable("Conv2D/kernel café µ") == "Conv2D/kernel café µ"  # ordinary text untouched
    assert escape("[red]x\x1b") == "\\[red]x\\x1b"


def test_inspect_shows_hostile_tensor_names_escaped(demo_int8, tmp_path):
    def rename(m):
        sg = m.subgraphs[0]
        sg.tensors[0].name = f"in{CLEAR}put".encode()
        sg.tensors[-1].name = f"out{TITLE}{RTL}put".encode()

    path = tmp_path / "names.tflite"
    path.write_bytes(edit(demo_int8.read_bytes(), rename))
    proc = run_cli(["inspect", str(path)])
    assert proc.returncode == 0, proc.stderr
    _no_raw(proc.stdout + proc.stderr)
    assert "in\\x1b" in proc.stdout  # shown (the table may cut the rest), so a reader sees what the file holds
    # --json keeps the names exactly (JSON escapes the control characters itself)
    proc = run_cli(["inspect", str(path), "--json"])
    _no_raw(proc.stdout)
    names = {t["name"] for t in json.loads(proc.stdout)["tensors"]}
    assert f"in{CLEAR}put" in names


def test_boards_file_text_escaped(tmp_path):
    path = tmp_path / "boards.toml"
    q = json.dumps  # a JSON string is a TOML basic string: the characters arrive as \u001b escapes
    path.write_text(f'[[board]]\nname = "evil"\ntitle = {q("t" + CLEAR)}\nmcu = {q("m" + TITLE)}\n'
                    f'core = "cortex-m4f"\nclock_mhz = 64\nflash_kb = 256\nsram_kb = 64\nsource = {q("s" + RTL + "x")}\n')
    proc = run_cli(["boards", "--boards-file", str(path)], env={**os.environ, "COLUMNS": "400"})  # pytest sets 80
    assert proc.returncode == 0, proc.stderr
    _no_raw(proc.stdout + proc.stderr)
    assert "m\\x1b]0;pwned\\x07" in proc.stdout


def test_error_line_naming_a_hostile_path_is_escaped(tmp_path):
    proc = run_cli(["inspect", str(tmp_path / f"no{CLEAR}such{TITLE}.tflite")])
    assert proc.returncode == 2
    line = stderr_one_line(proc)
    _no_raw(line)
    assert "no\\x1b[2J" in line
