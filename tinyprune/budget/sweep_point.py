"""One point of a sweep, as a pure function of its inputs.

A point is (flash budget, board, seed); with the sweep's shared inputs (the model as .h5
bytes, the data, the options of `prune_for_budget`, and what the sweep's driver computed once:
the sensitivity, and the original model's int8 conversion with its TFLM accuracy on the
validation data) it runs `tinyprune.budget.search.prune_for_budget` into a temporary folder
on whatever machine runs it, and returns the report record and every file that run wrote,
as bytes. The driver writes them into the sweep's folder, so a point computes the same thing
in this process, in a local worker process or on a Ray node of another machine.

Before any TensorFlow work the point caps TensorFlow's threads to the CPUs it was given
(`configure_threads`, through TINYPRUNE_TF_THREADS in tinyprune/tfsetup.py: the one place) and
its TFLM runs to as many child processes (TINYPRUNE_TFLM_PROCESSES, read by firmware_export/tflm.py),
writes the sweep's `--boards-file` (shipped as text) into its temporary folder, so that a node
without the file sees the same boards, and writes the driver's sensitivity measurement into this machine's cache
(TINYPRUNE_CACHE), under the key `prune_for_budget` looks up, so the pass is not repeated;
the original's facts go to `prune_for_budget(precomputed=...)`, so neither the original's
conversion nor its TFLM run on the validation data is repeated either.

Errors do not escape: a budget that cannot be met comes back as `infeasible` (the sweep
does not retry it: the same inputs give the same answer), any other exception as `error`.

Test hook (documented, for the fault-handling tests; never set it otherwise):
TINYPRUNE_SWEEP_FAIL="POINT_ID:MODE[:N],..." makes the named point fail on its first N
attempts (every attempt without N) before any work: MODE `raise` raises RuntimeError,
`exit` ends the worker process at once (os._exit), as a killed worker would. In the
serial backend, which runs points in the sweep's own process, `exit` raises instead.

This module runs one point; it does not schedule (sweep_backends.py) or aggregate (sweep.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from firmware_export import tflm
from tinyprune.budget.original import OriginalFacts
from tinyprune.load.data import Dataset

FAIL_ENV = "TINYPRUNE_SWEEP_FAIL"
THREADS_ENV = "TINYPRUNE_TF_THREADS"  # read by tinyprune/tfsetup.py (kept TF-free here)
WORKER_EXIT_CODE = 70  # exit status of a worker ended by the test hook


@dataclass(frozen=True)
class PointSpec:
    """Where one point sits in the sweep's grid."""

    budget: str
    board: str | None = None
    seed: int | None = None

    @property
    def id(self) -> str:
        """Folder-safe name, e.g. `flash_25pct-seed1` or `rpi-pico-flash_25pct-seed1`."""
        budget = "flash_" + re.sub(r"[^0-9A-Za-z.]+", "", self.budget.replace("%", "pct"))
        parts = [self.board] if self.board else []
        parts.append(budget)
        if self.seed is not None:
            parts.append(f"seed{self.seed}")
        return "-".join(parts)


@dataclass
class SharedSensitivity:
    """The driver's sensitivity measurement, as the cache file `analyze` reads."""

    filename: str
    text: str
    seconds: float


@dataclass
class SweepInputs:
    """What every point of one sweep shares (shipped to each worker once)."""

    model_h5: bytes
    data: Dataset
    options: dict  # keyword arguments of prune_for_budget besides the point's own
    sensitivity: SharedSensitivity | None = None
    unsafe_load: bool = False
    original: OriginalFacts | None = None  # the driver's search.original_facts (budget/original.py: no TF)
    boards_text: str | None = None  # the --boards-file's text: a node need not have the file


@dataclass
class PointOutcome:
    """What one attempt at a point produced: a report and its files, or why it did not."""

    point_id: str
    attempt: int
    report: dict | None = None
    files: dict[str, bytes] = field(default_factory=dict)  # path inside the point folder -> content
    error: str | None = None
    infeasible: bool = False  # the budget cannot be met (BudgetError): not retried
    threads: int | None = None  # TensorFlow intra-op threads the point ran with
    host: str = ""
    pid: int = 0
    node: str = ""  # the Ray node that ran it (on Ray; "" otherwise)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.report is not None


def configure_threads(threads: int | None) -> int:
    """Cap this process's TensorFlow threads to `threads` (only possible before TensorFlow
    starts; later calls leave it as it is) and its TFLM runs to as many child processes.
    Returns the intra-op thread count in force."""
    if threads is not None:
        os.environ[tflm.PROCESSES_ENV] = str(int(threads))  # read at each run: always in force
        if "tinyprune.tfsetup" not in sys.modules:
            os.environ[THREADS_ENV] = str(int(threads))
    from tinyprune.tfsetup import tf

    n = tf.config.threading.get_intra_op_parallelism_threads()
    return n or tflm.available_cpus()  # 0 = TensorFlow's default: one per CPU


def warm_up(threads: int | None) -> int:
    """Start what every point needs before its first one (TensorFlow with its thread cap, the
    budget search's modules, the TFLM runtime), so that a worker does it while the sweep's
    driver computes the shared inputs. Returns this process's pid."""
    configure_threads(threads)
    import tinyprune.budget.search  # noqa: F401 - imported for its side effect: the import is the warm-up

    tflm.warm_up()
    return os.getpid()


def _test_hook(point_id: str, attempt: int, may_exit: bool) -> None:
    for entry in filter(None, (e.strip() for e in os.environ.get(FAIL_ENV, "").split(","))):
        name, _, rest = entry.partition(":")
        mode, _, first_n = rest.partition(":")
        if name != point_id or (first_n and attempt > int(first_n)):
            continue
        if mode == "exit" and may_exit:
            os._exit(WORKER_EXIT_CODE)
        raise RuntimeError(f"test hook {FAIL_ENV} failed point {point_id} on attempt {attempt} ({mode})")


def _prewarm(shared: SharedSensitivity | None) -> None:
    """Put the driver's sensitivity entry into this machine's cache, atomically."""
    if shared is None:
        return
    from tinyprune.budget.sensitivity import cache_dir

    path = cache_dir() / shared.filename
    if path.is_file():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            f.write(shared.text)
        os.replace(tmp, path)
    except OSError:
        pass  # no writable cache: the point measures sensitivity itself (slower, same result)


def run_point(inputs: SweepInputs, spec: PointSpec, attempt: int = 1, threads: int | None = None,
              may_exit: bool = True) -> PointOutcome:
    """Run one point (see the module docstring); never raises for a failed point."""
    t0 = time.perf_counter()
    out = PointOutcome(spec.id, attempt, host=socket.gethostname(), pid=os.getpid())
    try:
        _test_hook(spec.id, attempt, may_exit)
        out.threads = configure_threads(threads)
        from tinyprune.budget.search import prune_for_budget
        from tinyprune.errors import BudgetError
        from tinyprune.load.model import load_model
        from tinyprune.tfsetup import keras

        with tempfile.TemporaryDirectory(prefix="tinyprune-point-") as tmp:
            keras.backend.clear_session()  # fresh layer-name counters and graph state per point
            model_path = Path(tmp) / "model.h5"
            model_path.write_bytes(inputs.model_h5)
            model = load_model(model_path, unsafe=inputs.unsafe_load)
            _prewarm(inputs.sensitivity)
            options = dict(inputs.options)
            if inputs.boards_text is not None and options.get("boards_file"):
                shipped = Path(tmp) / Path(options["boards_file"]).name  # the same name in messages
                shipped.write_text(inputs.boards_text)
                options["boards_file"] = str(shipped)
            folder = Path(tmp) / "point"
            try:
                result = prune_for_budget(model, inputs.data, folder, flash_budget=spec.budget, board=spec.board,
                                          seed=spec.seed, quiet=True, precomputed=inputs.original, **options)
            except BudgetError as e:
                out.error, out.infeasible = str(e), True
                return out
            out.report = result.to_dict()
            out.files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    except Exception as e:  # noqa: BLE001 - a failed point is recorded, the sweep goes on
        out.error = f"{type(e).__name__}: {e}".strip()
    finally:
        out.seconds = round(time.perf_counter() - t0, 2)
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
