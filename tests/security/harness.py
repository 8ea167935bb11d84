"""Run one (possibly hostile) .tflite through every reader of firmware_export and classify what happened.

`exercise(data, out_dir)` calls, in this process, what the CLI's inspect, fit, export and compress
call: the validating reader, `inspect_model` (TFLM arena, in a child process), `fit_model`,
`export_c` and `compress.plan`. A `UserError` is the wanted outcome for bad input; any other
exception is a traceback and counted as such. A TFLM crash that escaped the child process would
kill this process (so the caller's process surviving is the signal check).
"""

from __future__ import annotations

import traceback
from pathlib import Path

from firmware_export.errors import UserError


def exercise(data: bytes, out_dir: Path, boards=None) -> dict:
    """{"refused": error type or None, "tracebacks": [text], "steps": n} for one input."""
    from firmware_export import compress, estimate, inspect
    from firmware_export.boards import load_boards, select_boards
    from firmware_export.cexport import export_c
    from firmware_export.tflite_model import parse_tflite

    boards = boards or select_boards(load_boards(), None, False)
    result: dict = {"refused": None, "errors": [], "tracebacks": [], "steps": 0}
    steps = (
        ("read", lambda: parse_tflite(data)),
        ("inspect", lambda: inspect.inspect_model(data)),
        ("fit", lambda: estimate.fit_model(data, boards)),
        ("export", lambda: export_c(data, out_dir / "export", name="m", force=True)),
        ("compress", lambda: compress.plan(data, "prune")),
    )
    for name, step in steps:
        result["steps"] += 1
        try:
            step()
        except UserError as e:
            result["errors"].append(f"{name}: {type(e).__name__}")
            if name == "read":
                result["refused"] = type(e).__name__
                break
        except Exception:  # noqa: BLE001 - a traceback is exactly what is being counted
            result["tracebacks"].append(f"{name}: {traceback.format_exc(limit=3)}")
    return result
