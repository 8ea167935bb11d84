"""Sweeps on every backend: local serial, local worker processes and a real local Ray give
the same points and files; on a real two-node Ray cluster a failed point is retried once, a
killed worker too, the failure is recorded and every other point written; --resume skips
finished points; --ray without Ray installed is refused. No mocks of TF, TFLM or Ray: the fault tests use the documented
TINYPRUNE_SWEEP_FAIL hook of tinyprune/budget/sweep_point.py."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

from tests.helpers import DEMO_MODEL, loaded_modules_after, run_cli, stderr_one_line
from tinyprune.budget.sweep import SweepPoint, frontier, plan
from tinyprune.budget.sweep_point import FAIL_ENV, THREADS_ENV, PointSpec

# Files whose bytes hold wall times (report.json / report.md "seconds", sweep.json) are
# compared by content minus the times; every other file must be byte-identical.
TIMED_FILES = {"report.json", "report.md", "sweep.json"}


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (FAIL_ENV, THREADS_ENV, "RAY_ADDRESS")}
    env.update(extra)
    return env


def _sweep(out: Path, *extra: str, budgets: str = "60%,30%", seeds: str = "0,1", boards: str | None = None,
           env: dict | None = None, epochs: str = "1"):
    proc = run_cli(["sweep", str(DEMO_MODEL), "--data", "digits", "--budgets", budgets, "--seeds", seeds,
                    *(["--boards", boards] if boards else []), "--epochs", epochs, "-o", str(out), "--json", *extra],
                   env=env or _env())
    return proc, (json.loads(proc.stdout) if proc.stdout.strip() else None)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- planning and aggregation (no TensorFlow)

def test_plan_is_boards_by_budgets_by_seeds_with_folder_safe_ids():
    specs = plan(["50%", "12.5%"], ["rpi-pico", None], [0, 1])
    assert [s.id for s in specs] == ["rpi-pico-flash_50pct-seed0", "rpi-pico-flash_50pct-seed1",
                                     "rpi-pico-flash_12.5pct-seed0", "rpi-pico-flash_12.5pct-seed1",
                                     "flash_50pct-seed0", "flash_50pct-seed1", "flash_12.5pct-seed0",
                                     "flash_12.5pct-seed1"]
    assert PointSpec("96KB").id == "flash_96KB"


def test_frontier_spreads_over_seeds_and_flags_dominated_budgets():
    def pt(budget, seed, nbytes, acc):
        return SweepPoint(budget, 0, nbytes, 0, acc, acc, "pruned", "", 0.0, seed=seed)

    rows = frontier([pt("50%", 0, 2000, 0.90), pt("50%", 1, 2000, 0.94), pt("25%", 0, 1000, 0.95),
                     pt("25%", 1, 1000, 0.93), pt("75%", 0, 3000, 0.97)])
    by = {r.budget: r for r in rows}
    assert [r.budget for r in rows] == ["25%", "50%", "75%"]
    assert by["50%"].accuracy_mean == pytest.approx(0.92)
    assert (by["50%"].accuracy_min, by["50%"].accuracy_max) == (0.90, 0.94)
    assert by["50%"].seeds == 2 and by["50%"].accuracy_std == pytest.approx(0.02)
    # 50% is larger than 25% and less accurate: dominated; 25% and 75% are on the frontier
    assert (by["25%"].pareto, by["50%"].pareto, by["75%"].pareto) == (True, False, True)


# ---------------------------------------------------------------- --ray without Ray

def test_ray_option_without_ray_installed_exits_2_with_the_install_line(tmp_path):
    stub = tmp_path / "stub" / "ray"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('raise ImportError("ray is hidden for this test")\n')
    root = Path(__file__).resolve().parents[2]
    env = _env(PYTHONPATH=f"{stub.parent}{os.pathsep}{root}")
    proc = run_cli(["sweep", str(DEMO_MODEL), "--data", "digits", "--budgets", "50%", "--ray",
                    "-o", str(tmp_path / "out")], env=env)
    assert proc.returncode == 2
    line = stderr_one_line(proc)
    assert line.startswith("error: --ray needs Ray") and "pip install 'tinyprune[ray]'" in line
    assert not (tmp_path / "out").exists()


def test_bad_sweep_requests_exit_2_before_tensorflow(tmp_path):
    for args, needle in ((["--boards", "rpi-pico,no-such-board"], "no-such-board"),
                         (["--seeds", "0,one"], "whole numbers"), (["--budgets", "150%"], "150%"),
                         (["--workers", "0"], "--workers"), (["--resume", "--force"], "--resume")):
        proc = run_cli(["sweep", str(DEMO_MODEL), "--data", "digits", "-o", str(tmp_path / "out"), *args], env=_env())
        assert proc.returncode == 2, (args, proc.stderr)
        assert needle in stderr_one_line(proc), args
    assert not (tmp_path / "out").exists()
    # the checks, the planning and the backends import neither TensorFlow nor Ray
    loaded = loaded_modules_after("import tinyprune.cli.sweep, tinyprune.budget.sweep, tinyprune.budget.sweep_backends")
    assert not loaded & {"tensorflow", "tf_keras", "ray"}


def test_ray_auto_without_a_cluster_exits_2_and_writes_nothing(tmp_path):
    proc = run_cli(["sweep", str(DEMO_MODEL), "--data", "digits", "--budgets", "50%", "--ray", "auto",
                    "-o", str(tmp_path / "out")], env=_env())
    assert proc.returncode == 2
    assert "--ray auto: cannot connect to a Ray cluster" in stderr_one_line(proc)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- retry logic in-process

def test_a_budget_that_cannot_be_met_is_recorded_once_and_a_raising_point_is_retried(digits, monkeypatch):
    """run_jobs on the serial backend: the infeasible budget is not retried (same inputs, same
    answer); the point the hook makes raise is tried twice and its last reason kept. The
    infeasible point is on a board of a boards file that is not on this machine (as on a Ray
    node): the point reads the text the driver shipped, so the budget is judged, not the file
    found missing."""
    from tinyprune.budget.sweep import model_h5_bytes
    from tinyprune.budget.sweep_backends import SerialBackend, run_jobs
    from tinyprune.budget.sweep_point import SweepInputs
    from tinyprune.load.model import load_model

    monkeypatch.setenv(FAIL_ENV, "flash_50pct-seed0:raise")
    boards = ('[[board]]\nname = "tiny-m4"\ncore = "cortex-m4f"\nclock_mhz = 48\nflash_kb = 1024\n'
              'sram_kb = 256\nsource = "test board"\n')
    inputs = SweepInputs(model_h5_bytes(load_model(DEMO_MODEL)), digits,
                         {"epochs": 0, "boards_file": "/nonexistent/driver-only/boards.toml"}, boards_text=boards)
    seen = []
    run_jobs(SerialBackend(), inputs, [PointSpec("1%", "tiny-m4", seed=0), PointSpec("50%", seed=0)],
             lambda spec, outcome, earlier: seen.append((spec.id, outcome, earlier)))
    (id1, infeasible, earlier1), (id2, failed, earlier2) = seen
    assert id1 == "tiny-m4-flash_1pct-seed0" and earlier1 == []
    assert infeasible.infeasible, infeasible.error  # not "no such boards file"
    assert "cannot be met" in infeasible.error and infeasible.report is None
    assert id2 == "flash_50pct-seed0" and not failed.ok and failed.attempt == 2
    assert len(earlier2) == 1 and "test hook" in earlier2[0] and "attempt 2" in failed.error


# ---------------------------------------------------------------- the original's facts, computed once

def test_a_sweep_computes_the_original_once_and_its_points_report_what_a_standalone_run_does(digits, tmp_path):
    """2 budgets on digits, serially in this process (no fine-tuning: the original's facts do
    not depend on it): sweep.json records one computation of the original's int8 conversion
    and TFLM accuracy, in the driver; both points report those numbers, and the 30% point's
    report.json is the one a standalone prune_for_budget on the same inputs writes (but for
    times and its folder)."""
    from tinyprune.budget.search import prune_for_budget
    from tinyprune.budget.sweep import sweep
    from tinyprune.load.model import load_model

    s = sweep(load_model(DEMO_MODEL), digits, ["60%", "30%"], tmp_path / "sweep", seeds=[0], epochs=0, quiet=True)
    orig = s.original
    assert orig["shared"] and orig["computed_in"] == "driver" and orig["computations"] == 1
    assert orig["pid"] == os.getpid()  # the serial backend: the driver is this process
    assert s.original_accuracy == orig["tflm_accuracy"] and s.original_bytes == orig["int8_bytes"]
    assert 0.5 < orig["tflm_accuracy"] <= 1.0
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["original"] == orig
    points = {pid: json.loads((tmp_path / "sweep" / pid / "report.json").read_text())
              for pid in ("flash_60pct-seed0", "flash_30pct-seed0")}
    for r in points.values():
        assert r["status"] == "pruned" and r["accuracy"]["original_int8_tflm"] == orig["tflm_accuracy"]
        assert r["original"]["int8_bytes"] == orig["int8_bytes"]
    alone = prune_for_budget(load_model(DEMO_MODEL), digits, tmp_path / "alone", flash_budget="30%", seed=0,
                             epochs=0, importance="l1", allocation="sensitivity", quiet=True).to_dict()
    point = points["flash_30pct-seed0"]
    assert point["accuracy"]["original_int8_tflm"] == alone["accuracy"]["original_int8_tflm"]
    assert point["original"] == alone["original"] == points["flash_60pct-seed0"]["original"]
    for r in (point, alone):
        r.pop("output_dir")
    assert _without_times(point) == _without_times(alone)


# ---------------------------------------------------------------- local vs a real local Ray

def _without_times(obj):
    """A report with every wall-time entry ("seconds", at any depth) left out."""
    if isinstance(obj, dict):
        return {k: _without_times(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [_without_times(v) for v in obj]
    return obj


@pytest.mark.slow
def test_local_and_ray_sweeps_give_the_same_points_and_files(tmp_path):
    """2 budgets x 2 seeds on digits, serially in one process and as Ray tasks on a local Ray
    with 2 CPUs started by the library. Each Ray task runs TensorFlow with 1 thread (the CPU
    Ray gave it); the serial run is capped to 1 thread too (TINYPRUNE_TF_THREADS=1), and then
    the points are bit-identical. (With TensorFlow's default 2 threads the serial run's
    float sums happen in another order: sizes and allocations stay equal, weights differ in
    the last bits; docs/budget.md gives the measured difference.) The two sweeps run at the
    same time, as two processes that share nothing but the test's sensitivity cache folder
    (each writes its entry atomically): with 1 thread per point the results do not depend
    on what else runs, and the serial sweep would leave one of the 2 cores idle."""
    from concurrent.futures import ThreadPoolExecutor

    local, ray_out = tmp_path / "local", tmp_path / "ray"
    with ThreadPoolExecutor(2) as pool:
        serial = pool.submit(_sweep, local, env=_env(**{THREADS_ENV: "1"}))
        on_ray = pool.submit(_sweep, ray_out, "--ray", "--workers", "2")
        (proc_a, a), (proc_b, b) = serial.result(), on_ray.result()
    assert proc_a.returncode == 0, proc_a.stderr[-3000:]
    assert proc_b.returncode == 0, proc_b.stderr[-3000:]

    assert a["backend"]["backend"] == "serial"
    assert b["backend"]["backend"] == "ray" and b["backend"]["num_cpus"] == 2 and b["backend"]["cluster_cpus"] == 2
    assert b["backend"]["session_dir"] and not Path(b["backend"]["session_dir"]).exists()  # its logs went with it
    ids = ["flash_60pct-seed0", "flash_60pct-seed1", "flash_30pct-seed0", "flash_30pct-seed1"]
    assert [p["id"] for p in a["points"]] == [p["id"] for p in b["points"]] == ids
    for p, q in zip(a["points"], b["points"]):
        for key in ("int8_bytes", "arena_bytes", "keep", "flash_limit", "accuracy_tflm", "float_accuracy",
                    "tflite_sha256", "status"):
            assert p[key] == q[key], (p["id"], key)
        assert p["threads"] == q["threads"] == 1
        assert p["sensitivity_cached"] and q["sensitivity_cached"]  # measured once by the driver, shipped
        assert p["int8_bytes"] <= p["flash_limit"]
    assert {st["status"] for st in b["status"].values()} == {"done"}
    assert {p["pid"] for p in a["points"]} == {a["original"]["pid"]}  # serial: the driver ran every point
    warmed = b["backend"]["warmed_pids"]  # the workers Ray's warm-up tasks started TensorFlow in at open
    assert len(warmed) == 2 and {p["pid"] for p in b["points"]} <= set(warmed)  # ... ran the points
    fa, fb = _files(local), _files(ray_out)
    assert sorted(fa) == sorted(fb) and "pareto.png" in fa and "sweep.md" in fa
    for name in fa:
        if Path(name).name not in TIMED_FILES:
            assert fa[name] == fb[name], name
    for pid in ids:  # report.json: the same record but for times and the folder it names
        ra, rb = (json.loads(f[f"{pid}/report.json"]) for f in (fa, fb))
        assert ra["output_dir"] == str(local / pid) and rb["output_dir"] == str(ray_out / pid)
        for r in (ra, rb):
            r.pop("output_dir")
        assert _without_times(ra) == _without_times(rb)


# ---------------------------------------------------------------- faults on Ray, then --resume

@contextlib.contextmanager
def two_node_ray_cluster(**node_env: str):
    """A real Ray cluster of two nodes (a head and a worker node, 1 CPU each: separate raylets
    and object stores) on this machine, started with Ray's mini-cluster helper
    (ray.cluster_utils.Cluster, from Ray's testing guide) and removed at the end; yields its
    address, which a sweep reaches as it would a `ray start --head` cluster (`--ray ADDRESS`,
    or RAY_ADDRESS with `--ray auto`). The nodes' processes get this process's environment
    plus `node_env` (a real cluster's workers have their nodes' environment, not the driver's)."""
    import shutil
    import tempfile

    from ray.cluster_utils import Cluster

    temp_dir = tempfile.mkdtemp(prefix="tp-rc-")  # short: Ray puts Unix sockets there
    os.mkdir(Path(temp_dir) / "ray")
    # RAY_TMPDIR: the nodes' sessions and the cluster address file go here, not into /tmp/ray
    node_env = {**node_env, "RAY_TMPDIR": temp_dir}
    saved = {k: os.environ.get(k) for k in node_env}
    os.environ.update(node_env)
    cluster = Cluster()
    try:
        cluster.add_node(num_cpus=1, include_dashboard=False)  # the head
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        cluster.shutdown()
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.update({k: v})
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_a_killed_ray_worker_is_retried_a_failing_point_recorded_and_resume_skips_finished(digits, tmp_path):
    """On a board (the points' ids and budgets include it), 1 budget x 3 seeds on an existing
    two-node Ray cluster reached with `--ray auto` and RAY_ADDRESS (no fine-tuning: faults,
    retries and resume do not depend on it); then resumed on local worker processes, then
    in this process."""
    P = "rpi-pico-flash_30pct-"
    out = tmp_path / "sweep"
    hook = f"{P}seed1:exit:1,{P}seed2:raise"  # seed1's worker is killed on its first attempt; seed2 always raises
    with two_node_ray_cluster(**{FAIL_ENV: hook}) as address:
        proc, s = _sweep(out, "--ray", "auto", budgets="30%", seeds="0,1,2", boards="rpi-pico", epochs="0",
                         env=_env(RAY_ADDRESS=address))
    assert proc.returncode == 1, proc.stderr[-3000:]
    backend = s["backend"]
    assert backend["address"] == "auto" and backend["num_cpus"] is None and backend["cluster_cpus"] == 2
    assert len(backend["node_ids"]) == 2 and backend["warmed_pids"] == []  # no warm-up on a cluster
    assert {p["node"] for p in s["points"]} <= set(backend["node_ids"])  # each point records its node
    assert all(p["node"] and p["pid"] != s["original"]["pid"] for p in s["points"])  # ran on the cluster
    assert "1 of 3 points failed" in proc.stderr and "--resume" in proc.stderr and "Traceback" not in proc.stderr
    st = s["status"]
    assert st[P + "seed0"]["status"] == "done" and st[P + "seed0"]["attempts"] == 1
    assert st[P + "seed1"]["status"] == "done" and st[P + "seed1"]["attempts"] == 2
    assert "Ray worker died" in st[P + "seed1"]["errors"][0]
    assert st[P + "seed2"]["status"] == "failed" and st[P + "seed2"]["attempts"] == 2
    assert "test hook" in st[P + "seed2"]["reason"] and s["failed"] == {P + "seed2": st[P + "seed2"]["reason"]}
    assert [p["id"] for p in s["points"]] == [P + "seed0", P + "seed1"]
    for pid in (P + "seed0", P + "seed1"):
        assert (out / pid / "model_int8.tflite").is_file() and (out / pid / "report.json").is_file()
    assert not (out / (P + "seed2")).exists()
    report = json.loads((out / (P + "seed0") / "report.json").read_text())
    assert s["boards"] == ["rpi-pico"] and report["targets"]["board"] == "rpi-pico"
    assert json.loads((out / "sweep.json").read_text())["status"] == st  # on disk as printed
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    stamps = {pid: (out / pid / "report.json").stat().st_mtime_ns for pid in (P + "seed0", P + "seed1")}

    # resume on 2 local worker processes, the hook now killing seed2's worker on every attempt
    proc, s = _sweep(out, "--resume", "--workers", "2", budgets="30%", seeds="0,1,2", boards="rpi-pico", epochs="0",
                     env=_env(**{FAIL_ENV: f"{P}seed2:exit"}))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "2 finished point(s) kept, 1 to run" in proc.stderr
    assert s["status"][P + "seed2"]["status"] == "failed"
    assert "worker process died (exit code 70)" in s["status"][P + "seed2"]["reason"]
    assert s["backend"]["workers_restarted"] == 2

    # resuming without the hook finishes the sweep; resuming with other options is refused. Both
    # through the library in this process (the CLI's --resume is the run above; no third and
    # fourth TensorFlow start-up): the same data as --data digits, serially
    from tinyprune.budget.sweep import sweep
    from tinyprune.errors import ConfigError
    from tinyprune.load.model import load_model

    model = load_model(DEMO_MODEL)
    s = sweep(model, digits, ["30%"], out, boards=["rpi-pico"], seeds=[0, 1, 2], epochs=0, resume=True,
              quiet=True).to_dict()
    assert s["status"] == json.loads((out / "sweep.json").read_text())["status"]
    assert {v["status"] for v in s["status"].values()} == {"done"}
    assert [p["id"] for p in s["points"]] == [P + "seed0", P + "seed1", P + "seed2"]
    assert stamps == {pid: (out / pid / "report.json").stat().st_mtime_ns for pid in stamps}  # not re-run
    assert s["original"]["computations"] == 1 and "original" in s["seconds"]

    # nothing left to run: nothing is computed, the earlier run's original record is kept as such
    again = sweep(model, digits, ["30%"], out, boards=["rpi-pico"], seeds=[0, 1, 2], epochs=0, resume=True,
                  quiet=True).to_dict()
    assert again["points"] == s["points"] and not again["sensitivity"] and "original" not in again["seconds"]
    assert again["original"] == dict(s["original"], computed_in="an earlier run of this sweep", computations=0)
    with pytest.raises(ConfigError, match="another model, data or options"):
        sweep(model, digits, ["30%"], out, boards=["rpi-pico"], seeds=[0, 1, 2], epochs=2, resume=True, quiet=True)
