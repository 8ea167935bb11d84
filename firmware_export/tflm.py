"""Run a .tflite in the real TensorFlow Lite Micro interpreter and measure its arena.

This is the ground truth for two things: how much tensor arena a model needs (read from
TFLM's RecordingMicroAllocator report, which it prints on the C-level stderr) and what the
model outputs on a microcontroller's kernels (TFLM reference kernels, built for the host).
It does not estimate flash or latency (`estimate.py`) and never imports TensorFlow.

The host build is 64-bit; on a 32-bit Cortex-M the pointer-holding records in the arena
are smaller. `ArenaReport.target_bytes` applies that correction, record by record, from
the struct layouts in TFLM's `tensorflow/lite/c/common.h` and `micro_allocator.h`:

| record (RecordingMicroAllocator name)         | 64-bit | 32-bit | layout                         |
| ---------------------------------------------- | ------ | ------ | ------------------------------ |
| TfLiteEvalTensor data                          | 24     | 12     | 2 pointers + enum              |
| NodeAndRegistration struct                     | 64     | 32     | 6 pointers + int + 1 pointer   |
| Persistent TfLiteTensor data                   | 64     | 40     | 4 pointers/size_t + 6 words    |
| Persistent TfLiteTensor quantization data      | 24     | 12     | 2 pointers + int (per record)  |

Everything else (activation buffers, scratch, kernel op data of int32 multipliers) has the
same size on both. The result is rounded up to 16 bytes (TFLM's arena alignment).

Isolation. TFLM trusts the model: a kernel's Prepare can abort() (a TFLITE_DCHECK, e.g. the
softmax of an untrained int8 model with a degenerate scale) or segfault. So every public call
here that hands user bytes to TFLM (`measure_arena`, `fits_in_arena`, `run`, `input_detail`,
`output_detail`) validates the bytes (`validate.py`, through `tflite_model.parse_tflite`) and
then runs TFLM in a forked child process (`_isolated`): the result comes back pickled through
a pipe; a child killed by a signal becomes a `TflmError` with one line ("TFLM aborted while
preparing the model: <TFLM's last words>"), never a dead CLI. The overhead is measured in
docs/benchmarks.md ("TFLM isolation"). `make_interpreter` itself stays in-process: call it only
inside `_isolated` (or on bytes already known good).

Every fork here goes through `_fork`, which freezes the parent's objects out of the child's
garbage collector (`gc.freeze()` before the fork, `gc.unfreeze()` in the parent after it). A
process that ran TensorFlow holds uncollected reference cycles of TensorFlow objects (graphs,
operations, symbolic tensors; about 25,000 objects after a Keras 3 translation and an int8
conversion); a collection in the forked child finalized them without TensorFlow's threads and
segfaulted the child, so every arena probe counted as "does not fit" ("reports an arena it
cannot allocate"). The child only ever collects what it allocated itself.

Parallel runs. `run` splits a large batch over several children at once (`_isolated_many`;
one per CPU by default, `processes=` or TINYPRUNE_TFLM_PROCESSES to change it). The forks
happen one after another in the calling thread, then the parent reads the children's pipes
in order; a crash in any child is raised once every child has been reaped.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import re
import select
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from firmware_export.errors import ConfigError, TflmCrash, TflmError, UserError

ARENA_ALIGNMENT = 16  # TFLM requires a 16-byte aligned arena (MicroArenaBufferAlignment)
PROBE_TIMEOUT_S = 30  # a probe allocates once (milliseconds); far longer means the child hung
CHILD_TIMEOUT_S = 900  # one isolated call (a whole arena bisection, or a run over a validation set)
MAX_ARENA_BYTES = 1 << 30  # the default arena of make_interpreter is capped here (int32 sizes inside TFLM)

# (bytes per record on a 64-bit host, bytes on a 32-bit target); see module docstring.
_POINTER_RECORDS = {
    "TfLiteEvalTensor data": (24, 12),
    "NodeAndRegistration struct": (64, 32),
    "Persistent TfLiteTensor data": (64, 40),
    "Persistent TfLiteTensor quantization data": (24, 12),
}



@dataclass(frozen=True)
class ArenaRecord:
    name: str
    used: int
    requested: int
    count: int


@dataclass(frozen=True)
class ArenaReport:
    """TFLM's arena report for a model, as measured on the 64-bit host."""

    host_bytes: int  # smallest arena that allocates and invokes on the host (see measure_arena)
    head_bytes: int  # non-persistent: activations and scratch (planner)
    tail_bytes: int  # persistent: tensor structs, kernel data
    records: tuple[ArenaRecord, ...] = field(default=())
    reported_bytes: int = 0  # 'Arena allocation total' as TFLM printed it

    @property
    def pointer_saving(self) -> int:
        """Bytes the pointer-holding records lose on a 32-bit target."""
        saved = 0
        for r in self.records:
            if r.name in _POINTER_RECORDS and r.count:
                host, target = _POINTER_RECORDS[r.name]
                # quantization data mixes struct records with int arrays: only the structs shrink
                saved += (host - target) * r.count if r.name != "Persistent TfLiteTensor quantization data" \
                    else (host - target) * (r.count // 2)
        return saved

    @property
    def target_bytes(self) -> int:
        """Arena the same model needs on a 32-bit Cortex-M, rounded up to 16 bytes."""
        raw = self.host_bytes - self.pointer_saving
        return -(-raw // ARENA_ALIGNMENT) * ARENA_ALIGNMENT


@contextlib.contextmanager
def capture_c_stderr() -> Iterator[list[str]]:
    """Capture what C code writes to file descriptor 2 (TFLM prints there)."""
    out: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode("utf-8", "replace"))


_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
_HEAD = re.compile(r"Arena allocation head (\d+) bytes")
_TAIL = re.compile(r"Arena allocation tail (\d+) bytes")
_RECORD = re.compile(r"'([^']+)' used (\d+) bytes with alignment overhead \(requested (\d+) bytes for (\d+) ")


def parse_allocation_report(text: str) -> ArenaReport:
    """Parse the text of TFLM's RecordingMicroAllocator::PrintAllocations()."""
    total, head, tail = (_TOTAL.search(text), _HEAD.search(text), _TAIL.search(text))
    if not (total and head and tail):
        raise TflmError("TFLM printed no arena report; the tflite-micro package may be broken")
    records = tuple(
        ArenaRecord(name, int(used), int(req), int(n)) for name, used, req, n in _RECORD.findall(text)
    )
    total_bytes = int(total.group(1))
    return ArenaReport(total_bytes, int(head.group(1)), int(tail.group(1)), records, total_bytes)


def _runtime():
    from tflite_micro import runtime  # ~0.2 s; kept local so importing this module is free

    return runtime


def warm_up() -> None:
    """Import the TFLM runtime now (~0.2 s) rather than at the first run: a process that will
    fork TFLM children imports it once, so that each child starts warm."""
    _runtime()


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def make_interpreter(data: bytes, arena_size: int | None = None):
    """A TFLM interpreter for `data`; raises TflmError (with TFLM's own reason) on failure."""
    runtime = _runtime()
    if arena_size is None:
        arena_size = min(max(len(data) * 10, 1 << 20), MAX_ARENA_BYTES)
    with capture_c_stderr() as log:
        try:
            return runtime.Interpreter.from_bytes(data, arena_size=arena_size)
        except (RuntimeError, ValueError) as e:
            err = e
    reason = " ".join(line.strip() for line in log[0].splitlines() if line.strip())[:300]
    raise TflmError(f"TFLite Micro cannot load this model: {err}. {reason}".strip())


def _measure_arena(data: bytes) -> ArenaReport:
    """Allocate and invoke the model once in TFLM and return its arena report.

    TFLM's printed total leaves out the planner's temporary memory, which is freed after
    allocation but must fit while it runs; for tiny models it is larger than the head. So
    the printed total is checked by allocating with exactly that much, and if that fails
    the smallest arena that works is found by bisection in 16-byte steps.
    """
    report = _reported_arena(data)
    need = report.host_bytes
    if not _probe_fits(data, need):
        lo, hi = need // ARENA_ALIGNMENT, max(2 * need, need + 65536) // ARENA_ALIGNMENT
        if not _probe_fits(data, hi * ARENA_ALIGNMENT):
            raise TflmError("TFLite Micro reports an arena it cannot allocate; this model is not usable")
        while lo < hi:
            mid = (lo + hi) // 2
            if _probe_fits(data, mid * ARENA_ALIGNMENT):
                hi = mid
            else:
                lo = mid + 1
        need = hi * ARENA_ALIGNMENT
    return ArenaReport(need, report.head_bytes, report.tail_bytes, report.records, report.host_bytes)


def _reported_arena(data: bytes) -> ArenaReport:
    interp = make_interpreter(data)
    detail = interp.get_input_details(0)
    interp.set_input(np.zeros(detail["shape"], dtype=detail["dtype"]), 0)
    _stage("running")
    with capture_c_stderr() as log:
        try:
            interp.invoke()
        except RuntimeError as e:
            raise TflmError(f"TFLite Micro failed to run this model: {e}") from None
        interp.print_allocations()
    return parse_allocation_report(log[0])


def _fork() -> int:
    """os.fork() whose child never garbage-collects the parent's objects (see the module docstring).

    The parent's tracked objects are moved to the permanent generation for the fork and moved
    back in the parent right after it; the child keeps them frozen, so its collections (which
    its own allocations trigger) touch only objects it created.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    nested = gc.get_freeze_count() > 0  # already a forked child (its parent's objects are frozen in it)
    gc.freeze()
    pid = -1
    try:
        pid = os.fork()
    finally:
        if pid != 0 and not nested:  # the parent (or a failed fork): its collector sees everything again
            gc.unfreeze()  # (a nested fork keeps them frozen: unfreezing would expose the grandparent's)
    return pid


def fits_in_arena(data: bytes, arena_size: int) -> bool:
    """True if TFLM can allocate and invoke the (validated) model with exactly `arena_size` bytes."""
    return _probe_fits(_validated(data), arena_size)


def _probe_fits(data: bytes, arena_size: int) -> bool:
    """True if TFLM can allocate and invoke `data` (already validated) with exactly `arena_size` bytes.

    Some too-small arenas crash the TFLM allocator (a segmentation fault, seen with this
    tflite-micro build on a fully connected model at arena sizes just below what it needs)
    instead of failing cleanly. So each probe runs in a forked child where fork is
    available, and a crashed child counts as "does not fit".
    """
    if not hasattr(os, "fork"):
        return _fits(data, arena_size)
    pid = _fork()
    if pid == 0:  # child: probe, report through the exit code, never return into the caller
        try:
            ok = _fits(data, arena_size)
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    done = 0
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
            if time.monotonic() > deadline:  # e.g. a lock held by another thread at fork time
                break
            time.sleep(0.002)
    finally:
        if not done:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return False  # the child hung: never probe TFLM in this process; count it as "does not fit"


def _fits(data: bytes, arena_size: int) -> bool:
    try:
        interp = make_interpreter(data, arena_size)
        detail = interp.get_input_details(0)
        interp.set_input(np.zeros(detail["shape"], dtype=detail["dtype"]), 0)
        with capture_c_stderr():
            interp.invoke()
        return True
    except (TflmError, RuntimeError):
        return False


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float input -> the interpreter's input type, with its scale and zero point."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return x.astype(dtype)
    q = detail["quantization_parameters"]
    scale, zp = float(q["scales"][0]), int(q["zero_points"][0])
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zp), info.min, info.max).astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    """Interpreter output -> float, with its scale and zero point."""
    if np.dtype(detail["dtype"]).kind == "f":
        return y.astype(np.float32)
    q = detail["quantization_parameters"]
    return (y.astype(np.float32) - float(q["zero_points"][0])) * float(q["scales"][0])


def _run(data: bytes, x: np.ndarray, quantized_input: bool = False) -> np.ndarray:
    """Run every row of `x` through TFLM; returns raw outputs (model's output dtype).

    `x` is float (quantized here with the input's scale and zero point) unless
    `quantized_input` is true. The batch dimension is iterated: TFLM runs batch size 1.
    """
    interp = make_interpreter(data)
    in_detail = interp.get_input_details(0)
    shape = tuple(in_detail["shape"])
    outs = []
    _stage("running")
    with capture_c_stderr() as log:
        try:
            for row in x:
                xi = row.reshape(shape)
                xi = xi.astype(in_detail["dtype"]) if quantized_input else quantize_input(xi, in_detail)
                interp.set_input(xi, 0)
                interp.invoke()
                outs.append(np.array(interp.get_output(0)).reshape(-1).copy())
        except RuntimeError as e:
            err = e
        else:
            err = None
    if err is not None:
        reason = " ".join(line.strip() for line in log[0].splitlines() if line.strip())[:300]
        raise TflmError(f"TFLite Micro failed to run this model: {err}. {reason}".strip())
    return np.stack(outs)


def _output_detail(data: bytes) -> dict:
    return make_interpreter(data).get_output_details(0)


def _input_detail(data: bytes) -> dict:
    return make_interpreter(data).get_input_details(0)


# ---------------------------------------------------------------- isolation (public API)

_NODE = re.compile(r"Node (\w+) \(number (\d+)f?\) failed to (prepare|invoke)")
_stage_fd: int | None = None  # the result pipe while running inside an isolated child


def _stage(text: str) -> None:
    """Tell the parent what the child is doing (for the message if TFLM kills it)."""
    if _stage_fd is not None:
        os.write(_stage_fd, b"S" + text.encode()[:200] + b"\n")


def _validated(data: bytes) -> bytes:
    from firmware_export.tflite_model import parse_tflite

    return parse_tflite(bytes(data)).data


# TFLM's softmax Prepare (PreprocessSoftmaxScaling, kScaledDiffIntegerBits = 5) aborts in
# QuantizeMultiplierGreaterThanOne unless beta * input_scale * 2^(31 - 5) > 1.
_SOFTMAX_SCALE_BITS = 31 - 5


def suspect_op(data: bytes) -> tuple[int, str, str] | None:
    """(op index, op name, why) of the first operator whose quantization TFLM is known to abort on.

    Used only to name the op after TFLM died; TFLM itself stays the judge of what runs.
    """
    from firmware_export.tflite_model import parse_tflite

    m = parse_tflite(data)
    for op in m.operators:
        if op.name in ("SOFTMAX", "LOG_SOFTMAX") and op.inputs and m.tensors[op.inputs[0]].scale:
            scale = m.tensors[op.inputs[0]].scale[0]
            beta = float(op.options.get("beta", 1.0))
            if not beta * scale * (1 << _SOFTMAX_SCALE_BITS) > 1.0:
                return op.index, op.name, (f"input scale {scale:.3g} x beta {beta:g} is too small for TFLM's "
                                           "int8 softmax (a degenerate scale, as an untrained model has)")
        for i in op.inputs:
            if 0 <= i < len(m.tensors) and any(not (s > 0 and s < float("inf")) for s in m.tensors[i].scale):
                return op.index, op.name, f"tensor {i} has quantization scale {m.tensors[i].scale[0]!r}"
    return None


def _crash_message(status: int, stage: str, log: str, data: bytes | None = None) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    node = None
    for ln in lines:
        m = _NODE.search(ln)
        if m:
            node = m
    where = f"op {node.group(2)} {node.group(1)}" if node else "the model"
    suspect = None
    if node is None and data is not None:
        with contextlib.suppress(Exception):  # naming the op is a courtesy; the crash is the error
            suspect = suspect_op(data)
    if suspect:
        where = f"op {suspect[0]} {suspect[1]}"
        lines.append(suspect[2])
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        how = "aborted" if sig == signal.SIGABRT else f"crashed ({signal.Signals(sig).name})"
    else:
        how = f"exited with status {os.WEXITSTATUS(status)}"
    last = " ".join(lines[-2:])[:300] if lines else "it printed nothing"
    return (f"TFLM {how} while {stage} {where}: {last}; TFLite Micro cannot run this model "
            "(re-convert it from a trained model, or check that the file is intact)")


@dataclass
class _Child:
    """A forked child running one isolated call: its pid, the read end of its result pipe, its log."""

    pid: int
    pipe: int
    log: object
    stage: str
    args: tuple
    deadline: float


def _isolated(stage: str, fn, *args):
    """Run fn(*args) in a forked child; return its result, re-raise its UserError, or TflmError on a crash."""
    if not hasattr(os, "fork"):
        return fn(*args)
    return _finish(_start(stage, fn, *args))


def _isolated_many(stage: str, fn, calls: list[tuple]):
    """Run fn(*args) for every args of `calls`, each in its own forked child, all at once; the
    results in order. The first failure (in call order) is raised, after every child has ended."""
    if not hasattr(os, "fork"):
        return [fn(*args) for args in calls]
    children: list[_Child] = []
    try:
        for args in calls:  # forks happen one after another in this thread (see _fork)
            children.append(_start(stage, fn, *args))
    except BaseException:
        for c in children:
            _kill(c)
        raise
    results, error = [], None
    for c in children:
        try:
            results.append(_finish(c))
        except Exception as e:  # noqa: BLE001 - re-raised below, once every child is reaped
            error = error or e
    if error is not None:
        raise error
    return results


def _kill(child: _Child) -> None:
    with contextlib.suppress(OSError):
        os.kill(child.pid, signal.SIGKILL)
        os.waitpid(child.pid, 0)
    with contextlib.suppress(OSError):
        os.close(child.pipe)
    child.log.close()


def _start(stage: str, fn, *args) -> _Child:
    """Fork a child that runs fn(*args) and writes its result (or its error) to a pipe."""
    warm_up()
    r, w = os.pipe()
    log = tempfile.TemporaryFile(mode="w+b")
    pid = _fork()
    if pid == 0:  # child: never return into the caller
        global _stage_fd
        code = 0
        try:
            os.close(r)
            with contextlib.suppress(ImportError, ValueError, OSError):
                import resource

                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort here must not write a core file
            os.dup2(log.fileno(), 2)
            os.dup2(log.fileno(), 1)
            _stage_fd = w
            _stage(stage)
            try:
                payload = ("ok", fn(*args))
            except UserError as e:
                payload = ("user", type(e).__name__, str(e))
            except Exception as e:  # report it in the parent as what it is
                payload = ("exc", type(e).__name__, str(e)[:300])
            blob = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(b"R" + blob)
            while view:
                view = view[os.write(w, view):]
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    os.close(w)
    return _Child(pid, r, log, stage, args, time.monotonic() + CHILD_TIMEOUT_S)


def _finish(child: _Child):
    """Read a child's result and reap it: its return value, its UserError re-raised, or TflmError."""
    pid, r, log, stage, args, deadline = child.pid, child.pipe, child.log, child.stage, child.args, child.deadline
    chunks: list[bytes] = []
    status = None
    try:
        while True:
            ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(r)
        if status is None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    raw = b"".join(chunks)
    cut = raw.find(b"R")
    stages = [ln for ln in (raw if cut < 0 else raw[:cut]).split(b"\n") if ln.startswith(b"S")]
    stage_now = stages[-1][1:].decode("utf-8", "replace") if stages else stage
    log.seek(0)
    text = log.read().decode("utf-8", "replace")
    log.close()
    if cut >= 0 and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        payload = pickle.loads(raw[cut + 1:])
        if payload[0] == "ok":
            return payload[1]
        if payload[0] == "user":
            import firmware_export.errors as errors

            raise getattr(errors, payload[1], TflmError)(payload[2])
        raise TflmError(f"TFLite Micro failed while {stage_now} the model ({payload[1]}: {payload[2]})")
    if time.monotonic() >= deadline:
        raise TflmCrash(f"TFLite Micro did not finish {stage_now} the model within {CHILD_TIMEOUT_S} s; "
                        "it may loop forever on this model")
    data = next((a for a in args if isinstance(a, bytes)), None)
    raise TflmCrash(_crash_message(status, stage_now, text, data))


_ARENA_CACHE: dict[bytes, ArenaReport] = {}  # sha256 of the model -> report (inspect, fit, export of one file)
_ARENA_CACHE_SIZE = 16


def measure_arena(data: bytes) -> ArenaReport:
    """Allocate and invoke the model once in TFLM (in a child process) and return its arena report.

    See `_measure_arena` for how the smallest working arena is found. The last few reports are
    kept by content hash, so fit and export of the same bytes in one process measure once.
    """
    import hashlib

    data = _validated(data)
    key = hashlib.sha256(data).digest()
    if key not in _ARENA_CACHE:
        report = _isolated("preparing", _measure_arena, data)
        if len(_ARENA_CACHE) >= _ARENA_CACHE_SIZE:
            _ARENA_CACHE.pop(next(iter(_ARENA_CACHE)))
        _ARENA_CACHE[key] = report
    return _ARENA_CACHE[key]


PROCESSES_ENV = "TINYPRUNE_TFLM_PROCESSES"  # child processes `run` splits its rows over (default: CPUs)
# Fewest rows worth a child of their own: a fork of a process holding TensorFlow costs ~0.1 s
# (docs/benchmarks.md, "TFLM isolation"), about what 128 rows of a small model take to run.
MIN_ROWS_PER_PROCESS = 128


def default_processes() -> int:
    """How many children `run` uses by default: TINYPRUNE_TFLM_PROCESSES if set (a sweep point
    sets it to the CPUs it was given), else the CPUs this process may run on."""
    value = os.environ.get(PROCESSES_ENV, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ConfigError(f"{PROCESSES_ENV}={value!r}: give a whole number of processes >= 1, or unset it")
        return int(value)
    return available_cpus()


def run(data: bytes, x: np.ndarray, quantized_input: bool = False, processes: int | None = None) -> np.ndarray:
    """Run every row of `x` through TFLM (in child processes); returns raw outputs (model's output dtype).

    `x` is float (quantized here with the input's scale and zero point) unless
    `quantized_input` is true. The batch dimension is iterated: TFLM runs batch size 1, and
    every row runs in a fresh interpreter's state independent of the others, so the rows are
    split into contiguous slices over `processes` children at once (default
    `default_processes()`, at most one per MIN_ROWS_PER_PROCESS rows); the outputs are the
    same whatever the split.

    Example:
        >>> y = run(tflite_bytes, x_val, processes=2)   # two children, half the rows each
    """
    data, x = _validated(data), np.asarray(x)
    n = processes if processes is not None else default_processes()
    n = max(1, min(int(n), len(x) // MIN_ROWS_PER_PROCESS))
    if n == 1:
        return _isolated("preparing", _run, data, x, quantized_input)
    slices = np.array_split(x, n)
    return np.concatenate(_isolated_many("preparing", _run, [(data, part, quantized_input) for part in slices]))


def output_detail(data: bytes) -> dict:
    """The first output's details (shape, dtype, quantization), from TFLM in a child process."""
    return _isolated("preparing", _output_detail, _validated(data))


def input_detail(data: bytes) -> dict:
    """The first input's details (shape, dtype, quantization), from TFLM in a child process."""
    return _isolated("preparing", _input_detail, _validated(data))
