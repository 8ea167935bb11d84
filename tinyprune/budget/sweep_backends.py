"""Where the points of a sweep run: in this process, in local worker processes, or on Ray.

Three backends with one interface (`open`, `start`, `submit`, `wait`, `close`; `close` may be
called more than once):

- `SerialBackend`: one point after another in the sweep's own process (the default; its
  TensorFlow uses the threads this process already has).
- `ProcessBackend(workers=N)`: N worker processes on this machine (spawned, so each starts
  its own TensorFlow, capped to CPUs // N threads). The workers start at `open`, so they
  import TensorFlow while the driver computes the shared inputs (`sweep_point.warm_up`); the
  inputs are sent to each worker once; then one point at a time, so a worker that dies is
  known by the point it was running, and it is replaced by a fresh one.
- `RayBackend(address)`: each point is a Ray task (`num_cpus=cpus_per_point`), on a local Ray
  started for the run (`address="local"`, `ray.init(num_cpus=workers)`, shut down at the end)
  or on an existing cluster (`"auto"` = RAY_ADDRESS or the cluster `ray start` left on this
  machine, or an address). The shared inputs go into the object store once (`ray.put`);
  every task gets the reference. A task caps TensorFlow to the CPUs Ray assigned it. A local
  Ray gets one warm-up task per CPU slot at `open` (Ray reuses those workers for the points). On a
  cluster every node needs tinyprune with the same version installed (`pip install
  tinyprune[ray]`). Ray's own retries are off (`max_retries=0`): `run_jobs` retries, so that
  every backend retries the same way and the attempt count is recorded.

`run_jobs` feeds a backend, retries a point that raised or whose worker died (`retries`
times, by default once), does not retry a budget that cannot be met, and hands every
final outcome to a callback as soon as it arrives. This module schedules; it does not plan,
write files or aggregate (sweep.py), and runs a point only through sweep_point.run_point.
"""

from __future__ import annotations

import collections
import multiprocessing
import shutil
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for
from typing import Callable, Protocol

from firmware_export import tflm
from tinyprune.budget.sweep_point import PointOutcome, PointSpec, SweepInputs, run_point, warm_up
from tinyprune.errors import ConfigError, MissingExtraError

RAY_INSTALL_HINT = "pip install 'tinyprune[ray]'"


@dataclass(frozen=True)
class Job:
    spec: PointSpec
    attempt: int = 1


class Backend(Protocol):
    name: str
    capacity: int  # points in flight at once

    def open(self) -> None: ...  # reach the resources (Ray: connect or start); before anything is written

    def start(self, inputs: SweepInputs) -> None: ...

    def submit(self, job: Job) -> None: ...

    def wait(self) -> tuple[Job, PointOutcome]: ...

    def close(self) -> None: ...

    def describe(self) -> dict: ...


class SerialBackend:
    """Points one after another in this process."""

    name = "serial"
    capacity = 1

    def __init__(self) -> None:
        self._queue: collections.deque[Job] = collections.deque()
        self._inputs: SweepInputs | None = None

    def open(self) -> None:
        pass

    def start(self, inputs: SweepInputs) -> None:
        self._inputs = inputs

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    def wait(self) -> tuple[Job, PointOutcome]:
        job = self._queue.popleft()
        return job, run_point(self._inputs, job.spec, job.attempt, threads=None, may_exit=False)

    def close(self) -> None:
        pass

    def describe(self) -> dict:
        return {"backend": self.name, "workers": 1}


def _worker_main(conn, threads: int) -> None:
    """A ProcessBackend worker: warm up, wait for the shared inputs, then run the points it is
    sent until it is sent None."""
    warm_up(threads)
    inputs = conn.recv()
    if inputs is None:
        return
    while True:
        job = conn.recv()
        if job is None:
            return
        conn.send(run_point(inputs, job.spec, job.attempt, threads=threads))


class _Worker:
    def __init__(self, ctx, threads: int, inputs: SweepInputs | None = None) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, threads), daemon=True)
        self.proc.start()
        child.close()
        self.job: Job | None = None
        if inputs is not None:
            self.conn.send(inputs)


class ProcessBackend:
    """N worker processes on this machine, one point each at a time."""

    name = "processes"

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        self.capacity = workers
        self.threads = max(1, tflm.available_cpus() // workers)
        self._ctx = multiprocessing.get_context("spawn")  # a forked TensorFlow is not safe
        self._workers: list[_Worker] = []
        self._inputs: SweepInputs | None = None
        self.restarted = 0

    def open(self) -> None:
        """Start the workers: they import TensorFlow while the driver computes the shared inputs."""
        if not self._workers:
            self._workers = [_Worker(self._ctx, self.threads) for _ in range(self.capacity)]

    def start(self, inputs: SweepInputs) -> None:
        self.open()
        self._inputs = inputs
        for i, w in enumerate(self._workers):
            try:
                w.conn.send(inputs)
            except OSError:  # it died warming up (e.g. out of memory): a fresh one gets the inputs at start
                w.proc.join(timeout=10)
                self._workers[i] = _Worker(self._ctx, self.threads, inputs)
                self.restarted += 1

    def submit(self, job: Job) -> None:
        worker = next(w for w in self._workers if w.job is None)
        worker.job = job
        worker.conn.send(job)

    def wait(self) -> tuple[Job, PointOutcome]:
        busy = [w for w in self._workers if w.job is not None]
        while True:
            ready = set(wait_for([w.conn for w in busy] + [w.proc.sentinel for w in busy]))
            for w in busy:
                if w.conn in ready or w.proc.sentinel in ready:
                    job, w.job = w.job, None
                    try:
                        if w.conn.poll():
                            return job, w.conn.recv()
                    except (EOFError, OSError):
                        pass
                    return job, self._replace(w, job)

    def _replace(self, dead: _Worker, job: Job) -> PointOutcome:
        dead.proc.join(timeout=10)
        code = dead.proc.exitcode
        dead.conn.close()
        self._workers[self._workers.index(dead)] = _Worker(self._ctx, self.threads, self._inputs)
        self.restarted += 1
        return PointOutcome(job.spec.id, job.attempt, error=f"worker process died (exit code {code})")

    def close(self) -> None:
        for w in self._workers:
            try:
                w.conn.send(None)
            except OSError:
                pass
        for w in self._workers:
            w.proc.join(timeout=30)
            if w.proc.is_alive():
                w.proc.terminate()
                w.proc.join(timeout=10)
        self._workers = []

    def describe(self) -> dict:
        return {"backend": self.name, "workers": self.capacity, "threads_per_point": self.threads,
                "workers_restarted": self.restarted}


def require_ray():
    """The `ray` module, or MissingExtraError saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise MissingExtraError(f"--ray needs Ray, which is not installed ({e}); install it with "
                                f"{RAY_INSTALL_HINT}, or run without --ray") from None
    return ray


def _ray_point(inputs: SweepInputs, spec: PointSpec, attempt: int) -> PointOutcome:
    """The Ray task: run one point with as many TensorFlow threads as CPUs Ray assigned it."""
    import ray

    context = ray.get_runtime_context()
    cpus = context.get_assigned_resources().get("CPU", 1.0)
    outcome = run_point(inputs, spec, attempt, threads=max(1, int(cpus)))
    outcome.node = context.get_node_id()
    return outcome


def _ray_warm_up() -> int:
    """A Ray task run once per CPU slot at open: the worker it lands on imports TensorFlow (capped
    as a point's would be) while the driver computes the shared inputs; Ray reuses the worker."""
    import ray

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    return warm_up(max(1, int(cpus)))


class RayBackend:
    """Each point a Ray task; a local Ray for the run, or an existing cluster."""

    name = "ray"

    def __init__(self, address: str = "local", workers: int | None = None, cpus_per_point: float = 1) -> None:
        self.ray = require_ray()
        if cpus_per_point <= 0:
            raise ConfigError(f"--cpus-per-point must be > 0, got {cpus_per_point}")
        if address != "local" and workers is not None:
            raise ConfigError("--workers sets the CPUs of the local Ray started for the run; on an existing "
                              "cluster (--ray ADDRESS) the cluster's CPUs decide: drop --workers")
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        self.address = address
        self.num_cpus = (workers or tflm.available_cpus()) if address == "local" else None
        self.cpus_per_point = cpus_per_point
        self.capacity = 1 << 30  # Ray queues every task and runs as many as the CPUs allow
        self._refs: dict = {}
        self.cluster_cpus: float | None = None
        self.node_ids: list[str] = []  # the cluster's live nodes at open (a point's `node` is one of them)
        self.start_seconds = self.close_seconds = 0.0  # ray.init + ray.put; ray.shutdown
        self._session_dir: str | None = None  # the local Ray's logs and sockets, removed at close
        self._warm_refs: list = []  # warm-up tasks of a local Ray
        self.warmed_pids: list[int] = []  # the workers they warmed (read at close)

    def open(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        t = time.perf_counter()
        kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level="error")
        if self.address == "local":
            # its own session folder (short: Ray puts Unix sockets there), so nothing is left in /tmp/ray
            self._session_dir = tempfile.mkdtemp(prefix="tp-ray-")
            ray.init(address="local", num_cpus=self.num_cpus, _temp_dir=self._session_dir, **kwargs)
        else:
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise ConfigError(f"--ray {self.address}: cannot connect to a Ray cluster ({e}); start one "
                                  "with `ray start --head` or give its address") from None
        self.cluster_cpus = ray.cluster_resources().get("CPU")
        self.node_ids = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
        slots = int((self.cluster_cpus or 1) // self.cpus_per_point) if self.address == "local" else 0
        warm = ray.remote(_ray_warm_up).options(num_cpus=self.cpus_per_point, max_retries=0)
        self._warm_refs = [warm.remote() for _ in range(slots)]  # not waited for: points queue behind them
        self.start_seconds += round(time.perf_counter() - t, 2)

    def start(self, inputs: SweepInputs) -> None:
        self.open()
        t = time.perf_counter()
        self._inputs_ref = self.ray.put(inputs)
        self._task = self.ray.remote(_ray_point).options(num_cpus=self.cpus_per_point, max_retries=0,
                                                         retry_exceptions=False)
        self.start_seconds = round(self.start_seconds + time.perf_counter() - t, 2)

    def submit(self, job: Job) -> None:
        self._refs[self._task.remote(self._inputs_ref, job.spec, job.attempt)] = job

    def wait(self) -> tuple[Job, PointOutcome]:
        ray = self.ray
        [ref], _ = ray.wait(list(self._refs), num_returns=1)
        job = self._refs.pop(ref)
        try:
            return job, ray.get(ref)
        except ray.exceptions.RayError as e:  # the worker or its node died, the object was lost
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            died = isinstance(e, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError))
            what = "Ray worker died" if died else "Ray task failed"
            return job, PointOutcome(job.spec.id, job.attempt, error=f"{what} ({type(e).__name__}: {first})")

    def close(self) -> None:
        t = time.perf_counter()
        if self.ray.is_initialized():
            if self._warm_refs:
                try:
                    self.warmed_pids = sorted(self.ray.get(self._warm_refs, timeout=60))
                except Exception:  # noqa: BLE001 - a warm-up that failed only costs its time
                    self.warmed_pids = []
                self._warm_refs = []
            self.ray.shutdown()  # ends the local Ray started for the run; only disconnects from a cluster
            self.close_seconds = round(time.perf_counter() - t, 2)
        if self._session_dir is not None:  # kept in describe(): the report says where it was
            shutil.rmtree(self._session_dir, ignore_errors=True)

    def describe(self) -> dict:
        return {"backend": self.name, "address": self.address, "num_cpus": self.num_cpus,
                "cluster_cpus": self.cluster_cpus, "node_ids": self.node_ids, "cpus_per_point": self.cpus_per_point,
                "start_seconds": self.start_seconds, "close_seconds": self.close_seconds,
                "session_dir": self._session_dir, "warmed_pids": self.warmed_pids}


def make_backend(workers: int | None = None, ray_address: str | None = None, cpus_per_point: float = 1) -> Backend:
    """The backend for the CLI's --workers / --ray options."""
    if ray_address:
        return RayBackend(ray_address, workers, cpus_per_point)
    if workers is None or workers == 1:
        return SerialBackend()
    return ProcessBackend(workers)


def run_jobs(backend: Backend, inputs: SweepInputs, specs: list[PointSpec],
             on_done: Callable[[PointSpec, PointOutcome, list[str]], None], retries: int = 1) -> None:
    """Run every point on `backend`; call `on_done(spec, final outcome, earlier errors)` per point.

    A point that raised or whose worker died is submitted again (up to `retries` times);
    an infeasible budget is final at once."""
    pending = collections.deque(Job(s) for s in specs)
    errors: dict[str, list[str]] = collections.defaultdict(list)
    in_flight = 0
    backend.start(inputs)
    try:
        while pending or in_flight:
            while pending and in_flight < backend.capacity:
                backend.submit(pending.popleft())
                in_flight += 1
            job, outcome = backend.wait()
            in_flight -= 1
            if not outcome.ok and not outcome.infeasible and job.attempt <= retries:
                errors[job.spec.id].append(outcome.error or "failed")
                pending.appendleft(Job(job.spec, job.attempt + 1))
                continue
            on_done(job.spec, outcome, errors.pop(job.spec.id, []))
    finally:
        backend.close()
