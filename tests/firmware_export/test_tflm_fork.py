"""firmware_export/tflm.py's forked children never garbage-collect the parent's objects.

The defect this guards (issue 14): a process that had run TensorFlow (a Keras 3 translation, an
int8 conversion) held ~25,000 uncollected TensorFlow objects in reference cycles; the forked
arena probe's own allocations triggered a collection that finalized them in the child, which
segfaulted, so `measure_arena` said "reports an arena it cannot allocate". Here the parent's
garbage is a cycle whose finalizer records the pid that ran it: it must run in the parent only.
No TensorFlow.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from firmware_export import tflm


class _Marker:
    """One half of a reference cycle; its finalizer appends the running pid to `path`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.other = None

    def __del__(self) -> None:
        with open(self.path, "a") as f:
            f.write(f"{os.getpid()}\n")


def _make_garbage(path: str) -> None:
    a, b = _Marker(path), _Marker(path)
    a.other, b.other = b, a  # a cycle: only the garbage collector frees it


@pytest.fixture
def collector_off():
    was = gc.isenabled()
    gc.disable()  # the parent must not collect the cycle before the fork
    yield
    if was:
        gc.enable()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the isolation forks only where fork exists")
def test_isolated_child_does_not_finalize_the_parents_garbage(tmp_path, collector_off):
    marks = tmp_path / "finalized_by.txt"
    _make_garbage(str(marks))
    collected_in_child = tflm._isolated("testing", gc.collect)  # the child runs a full collection
    assert isinstance(collected_in_child, int)
    assert not marks.exists(), f"the child (not {os.getpid()}) finalized the parent's objects"
    assert gc.get_freeze_count() == 0  # the parent's collector sees its objects again
    assert gc.collect() >= 2 and marks.read_text().split() == [str(os.getpid())] * 2  # real garbage


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the isolation forks only where fork exists")
def test_every_tflm_fork_goes_through_the_guard(tmp_path, collector_off):
    """`_fork` (used by `_isolated` and by each arena probe of `_probe_fits`): a child that
    collects, then exits, leaves the parent's cycle alone; and no bare os.fork is left in tflm.py."""
    marks = tmp_path / "finalized_by.txt"
    _make_garbage(str(marks))
    pid = tflm._fork()
    if pid == 0:
        gc.collect()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert not marks.exists()
    assert gc.get_freeze_count() == 0
    assert gc.collect() >= 2 and marks.read_text().split() == [str(os.getpid())] * 2
    source = Path(tflm.__file__).read_text()
    assert source.count("= os.fork()") == 1 and source.count("pid = _fork()") == 2  # the helper, its two callers


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the isolation forks only where fork exists")
def test_a_fork_inside_a_forked_child_keeps_the_grandparents_objects_frozen(tmp_path, collector_off):
    """The isolated child forks again for each arena probe: after such a fork the child's own
    collector must still not see (and finalize) the objects it inherited."""
    marks = tmp_path / "finalized_by.txt"
    _make_garbage(str(marks))

    def child_forks_then_collects() -> int:
        pid = tflm._fork()  # a probe's fork, from inside the isolated child
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        return gc.collect()

    tflm._isolated("testing", child_forks_then_collects)
    assert not marks.exists(), "a nested fork unfroze the parent's objects in the child"
    assert gc.get_freeze_count() == 0
