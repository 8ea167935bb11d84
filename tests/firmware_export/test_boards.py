"""Board profiles: the shipped file, user files, name lookup, and clear errors (issue 7)."""

from __future__ import annotations

import json

import pytest

from firmware_export.boards import (CORES, DEFAULT_BOARDS, KERNELS, load_boards, parse_boards,
                                    select_boards)
from tinyprune.errors import BoardError, InputFileError
from tests.helpers import run_cli, stderr_one_line

GOOD_BOARD = """
[[board]]
name = "my-m4"
title = "My M4 board"
core = "cortex-m4f"
clock_mhz = 80
flash_kb = 256
sram_kb = 64
usable_sram_kb = 48
source = "my datasheet"
"""


@pytest.fixture
def boards_file(tmp_path):
    def write(text: str):
        p = tmp_path / "boards.toml"
        p.write_text(text)
        return p
    return write


def test_shipped_profiles_are_complete():
    boards = load_boards()
    assert len(boards) >= 15
    for b in boards.values():
        assert b.core in CORES and b.kernels in KERNELS
        assert b.source.strip(), f"{b.name} has no source note"
        assert b.clock_mhz > 0 and b.flash_kb > 0 and b.sram_kb > 0
        assert b.flash_bytes <= b.flash_kb * 1024 and b.sram_bytes <= b.sram_kb * 1024
    assert 3 <= len(DEFAULT_BOARDS) <= 5 and set(DEFAULT_BOARDS) <= set(boards)
    # usable sizes are used where the profile gives them
    assert boards["arduino-nano-33-ble"].flash_bytes == 960 * 1024
    assert boards["nucleo-h743zi2"].sram_bytes == 512 * 1024


def test_select_by_name_all_and_default():
    boards = load_boards()
    assert [b.name for b in select_boards(boards, ["RPI-Pico", "ek-ra6m4"], False)] == ["rpi-pico", "ek-ra6m4"]
    assert len(select_boards(boards, None, True)) == len(boards)
    assert [b.name for b in select_boards(boards, None, False)] == list(DEFAULT_BOARDS)


def test_unknown_board_suggests_nearest_names():
    with pytest.raises(BoardError, match="nearest: arduino-nano-33-ble"):
        select_boards(load_boards(), ["nano33"], False)
    with pytest.raises(BoardError, match="rpi-pico, rpi-pico2"):
        select_boards(load_boards(), ["pico"], False)


def test_custom_file_adds_and_overrides(boards_file):
    override = GOOD_BOARD + '\n[[board]]\nname = "rpi-pico"\ncore = "cortex-m0plus"\nclock_mhz = 48\n' \
                            'flash_kb = 2048\nsram_kb = 264\n'
    boards = load_boards(boards_file(override))
    assert boards["my-m4"].sram_bytes == 48 * 1024 and boards["my-m4"].kernels == "cmsis-nn"
    assert boards["rpi-pico"].clock_mhz == 48  # the user's profile wins
    assert "ek-ra6m4" in boards  # shipped ones stay


@pytest.mark.parametrize("text, expected", [
    (GOOD_BOARD.replace("clock_mhz = 80", "clock_mhz = \"fast\""), "board 'my-m4': field 'clock_mhz'"),
    (GOOD_BOARD.replace("clock_mhz = 80\n", ""), "board 'my-m4': missing field 'clock_mhz'"),
    (GOOD_BOARD.replace("cortex-m4f", "cortex-a53"), "board 'my-m4': field 'core' must be one of"),
    (GOOD_BOARD.replace("usable_sram_kb = 48", "usable_sram_kb = 96"), "board 'my-m4': field 'usable_sram_kb'"),
    (GOOD_BOARD.replace("sram_kb = 64", "sram_kb = 64\nsram = 3"), "board 'my-m4': unknown field 'sram'"),
    (GOOD_BOARD.replace('name = "my-m4"', "name = 3"), "board #1: field 'name'"),
    (GOOD_BOARD + GOOD_BOARD, "board 'my-m4' is defined twice"),
    ("[[board]\nname = 1", "is not valid TOML"),
    ("title = 'x'\n", "has no [[board]] tables"),
])
def test_malformed_profiles_name_board_and_field(boards_file, text, expected):
    path = boards_file(text)
    with pytest.raises(BoardError) as e:
        load_boards(path)
    assert expected in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_boards_file(tmp_path):
    with pytest.raises(InputFileError, match="no such boards file"):
        load_boards(tmp_path / "nope.toml")


def test_parse_boards_keeps_file_order():
    boards = parse_boards(GOOD_BOARD + GOOD_BOARD.replace("my-m4", "my-other"))
    assert [b.name for b in boards] == ["my-m4", "my-other"]


def test_cli_boards_lists_profiles_with_custom_file(boards_file):
    proc = run_cli(["boards", "--boards-file", str(boards_file(GOOD_BOARD)), "--json"])
    assert proc.returncode == 0, proc.stderr
    listed = {b["name"]: b for b in json.loads(proc.stdout)}
    assert len(listed) >= 16 and listed["my-m4"]["source"] == "my datasheet"
    from firmware_export.boards import DEFAULT_BOARDS

    assert {n for n, b in listed.items() if b["default"]} == set(DEFAULT_BOARDS)  # the table's *
    table = run_cli(["boards"])
    assert table.returncode == 0 and "nucleo-l4r5zi" in table.stdout and "sources" in table.stdout


def test_cli_boards_malformed_file_is_one_line(boards_file):
    proc = run_cli(["boards", "--boards-file", str(boards_file(GOOD_BOARD.replace("flash_kb = 256", "flash_kb = -1")))])
    assert proc.returncode == 2
    line = stderr_one_line(proc)
    assert "board 'my-m4'" in line and "'flash_kb'" in line
