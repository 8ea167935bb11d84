"""firmware_export/tflm.run splits a batch over several TFLM children: same outputs, same failures.

The demo model's int8 .tflite on sklearn's digits (real TFLM); the failure cases use
`_isolated_many` directly with a function that kills its own child, as TFLM's abort() does.
"""

from __future__ import annotations

import gc
import os
import signal

import numpy as np
import pytest

from firmware_export import tflm
from firmware_export.errors import ConfigError, TflmCrash

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the isolation forks only where fork exists")


def _no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:  # this process has no child, running or unreaped
        return True
    return False


def test_a_batch_split_over_children_gives_the_outputs_of_one_child(demo_int8, digits):
    data = demo_int8.read_bytes()
    x = digits.x_val[: 3 * tflm.MIN_ROWS_PER_PROCESS + 5]  # uneven slices
    one = tflm.run(data, x, processes=1)
    three = tflm.run(data, x, processes=3)
    assert one.shape == (len(x), 10) and one.dtype == np.int8
    assert np.array_equal(one, three)
    assert len(np.unique(one.argmax(axis=1))) > 5  # real predictions, not one constant row
    assert _no_children_left()
    assert gc.get_freeze_count() == 0


def test_the_env_sets_the_default_processes_and_a_bad_value_is_refused(demo_int8, digits, monkeypatch):
    data = demo_int8.read_bytes()
    x = digits.x_val[:10]
    monkeypatch.setenv(tflm.PROCESSES_ENV, "4")
    assert tflm.default_processes() == 4
    assert np.array_equal(tflm.run(data, x), tflm.run(data, x, processes=1))
    monkeypatch.delenv(tflm.PROCESSES_ENV)
    assert tflm.default_processes() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(tflm.PROCESSES_ENV, "two")
    with pytest.raises(ConfigError, match="TINYPRUNE_TFLM_PROCESSES='two'"):
        tflm.run(data, x)


def _abort_on(marker: int) -> int:
    if marker == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # a child killed by a signal, as TFLM's abort() or a segfault
    return marker * 10


def test_one_crashing_child_is_one_error_and_every_child_is_reaped():
    assert tflm._isolated_many("testing", _abort_on, [(0,), (2,), (3,)]) == [0, 20, 30]
    with pytest.raises(TflmCrash, match=r"TFLM crashed \(SIGKILL\) while testing"):
        tflm._isolated_many("testing", _abort_on, [(0,), (1,), (2,)])
    assert _no_children_left()
    assert gc.get_freeze_count() == 0
