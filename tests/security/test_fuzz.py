"""Fuzz: seeded structural mutations of real .tflite files and hostile Keras files through every loader.

Counts are asserted, not just survived: no traceback, no signal (the test process itself runs
the TFLM calls through the child-process isolation, so an escaped crash would kill it), no code
execution (the Lambda marker file never appears). benchmarks/fuzz_inputs.py runs the same
mutations at a larger count and prints the table recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_export.errors import UserError
from tests.security.harness import exercise
from tests.security.hostile_keras import (lambda_template, variants, write_h5, write_keras_zip,
                                          write_savedmodel_metadata)
from tests.security.mutate import mutate
from tinyprune.errors import ModelLoadError

DEMO_CASES = 80
MLPERF_CASES = 8  # per MLPerf Tiny model, when ../shared/data is present


def _fuzz(data: bytes, cases: int, seed: int, tmp_path: Path) -> dict:
    rng = random.Random(seed)
    counts = {"cases": 0, "refused": 0, "accepted": 0, "tracebacks": []}
    for _ in range(cases):
        kind, bad = mutate(data, rng)
        r = exercise(bad, tmp_path)
        counts["cases"] += 1
        counts["refused" if r["refused"] else "accepted"] += 1
        counts["tracebacks"] += [(kind, t) for t in r["tracebacks"]]
    return counts


def test_fuzz_demo_int8(demo_int8, tmp_path):
    counts = _fuzz(demo_int8.read_bytes(), DEMO_CASES, 13, tmp_path)
    assert counts["tracebacks"] == [], counts["tracebacks"][0]
    assert counts["refused"] > DEMO_CASES // 4 and counts["accepted"] > 0  # both paths were exercised


def test_fuzz_mlperf(mlperf_dir, tmp_path):
    models = sorted(mlperf_dir.glob("*.tflite"))
    assert models
    for i, path in enumerate(models):
        counts = _fuzz(path.read_bytes(), MLPERF_CASES, 100 + i, tmp_path)
        assert counts["tracebacks"] == [], (path.name, counts["tracebacks"][0])


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(patches=st.lists(st.tuples(st.integers(0, 40_000), st.binary(min_size=1, max_size=8)), min_size=1,
                        max_size=6), cut=st.one_of(st.none(), st.integers(0, 40_000)))
def test_hypothesis_patched_bytes_never_traceback(demo_int8, patches, cut):
    from firmware_export.tflite_model import parse_tflite

    data = bytearray(demo_int8.read_bytes())
    for at, blob in patches:
        at %= len(data)
        data[at:at + len(blob)] = blob
    if cut is not None:
        data = data[:cut]
    try:
        parse_tflite(bytes(data))
    except UserError:
        pass


@settings(max_examples=150, deadline=None, database=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=30))
def test_hypothesis_lambda_anywhere_is_refused(tree):
    """A Lambda (or unknown class) placed anywhere in any JSON tree is refused by the pure walker."""
    from tinyprune.load.safety import check_config

    config = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "Dense", "config": {"name": "d", "extra": tree}},
        {"class_name": "Lambda", "config": {"name": "evil", "function": ["x", None, None]}}]}}
    with pytest.raises(ModelLoadError, match="'evil'"):
        check_config(config, "fuzz")
    if not any(isinstance(v, dict) and "class_name" in v for v in _dicts(tree)):
        check_config({"class_name": "Dense", "config": {"name": "d", "extra": tree}}, "fuzz")  # no false alarm


def _dicts(tree):
    if isinstance(tree, dict):
        yield tree
        for v in tree.values():
            yield from _dicts(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _dicts(v)


def test_hostile_keras_files_through_every_loader(tmp_path):
    """Every rewrite of a marker-writing Lambda config, in .h5, .keras and SavedModel form, is refused;
    the marker is checked after each load. One unsafe load proves the marker would appear."""

    from tinyprune.load.model import load_model
    from tinyprune.tfsetup import keras

    template, marker, text = lambda_template(keras, tmp_path)
    tried = 0
    for i, (name, cfg) in enumerate(variants(text)):
        for kind, path in (("h5", write_h5(template, cfg, tmp_path / f"v{i}.h5")),
                           ("keras", write_keras_zip(cfg, tmp_path / f"v{i}.keras")),
                           ("savedmodel", write_savedmodel_metadata(cfg, tmp_path / f"sm{i}"))):
            with pytest.raises(ModelLoadError):
                load_model(path)
            assert not marker.exists(), f"{name} ({kind}) ran code"
            tried += 1
    assert tried == 27
    load_model(write_h5(template, text, tmp_path / "trusted.h5"), unsafe=True)
    assert marker.exists()  # the marker mechanism works: an unchecked load does run the Lambda
