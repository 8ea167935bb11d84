"""Hostile Keras files: no code from a model file runs without --unsafe-load, through every loader.

Each crafted model carries a Lambda that would write a marker file when deserialized or called;
every test asserts the marker does not exist afterwards (never a skip). The cases are the ones
found on main: a SavedModel whose keras_metadata.pb writes `"class_name":"Lambda"` without the
space, and an HDF5 file with a 512-byte user block that starts like a zip, with a harmless
.keras appended.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from tinyprune.errors import ModelLoadError
from tests.helpers import run_cli, stderr_one_line


def _marker_lambda_model(keras, marker: Path):
    """A model whose Lambda writes `marker` when it is rebuilt or run (module-level code in the closure)."""
    src = f"lambda t: (open({str(marker)!r}, 'w').write('ran'), t)[1]"
    inp = keras.Input((4,))
    out = keras.layers.Lambda(eval(src), name="evil")(keras.layers.Dense(3, name="d")(inp))  # noqa: S307
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def keras_mod():
    from tinyprune.tfsetup import keras

    return keras


@pytest.fixture()
def marker(tmp_path):
    m = tmp_path / "LAMBDA_RAN"
    yield m
    assert not m.exists(), "a Lambda from a model file ran"


def _savedmodel_without_space(keras, tmp_path: Path, marker: Path) -> Path:
    """A tf_keras SavedModel whose keras_metadata.pb says "class_name":"Lambda" (no space)."""
    from tf_keras.protobuf import saved_metadata_pb2

    model = _marker_lambda_model(keras, marker)
    folder = tmp_path / "sm"
    model.save(folder, save_format="tf")
    if marker.exists():
        marker.unlink()  # saving traced the Lambda; only what loading does counts
    meta = saved_metadata_pb2.SavedMetadata()
    meta.ParseFromString((folder / "keras_metadata.pb").read_bytes())
    seen = False
    for node in meta.nodes:
        doc = json.loads(node.metadata)
        text = json.dumps(doc, separators=(",", ":"))
        seen |= '"class_name":"Lambda"' in text
        node.metadata = text
    assert seen
    (folder / "keras_metadata.pb").write_bytes(meta.SerializeToString())
    assert b'"class_name": "Lambda"' not in (folder / "keras_metadata.pb").read_bytes()
    return folder


def test_savedmodel_lambda_without_space_is_refused(keras_mod, tmp_path, marker):
    from tinyprune.load.model import load_model

    from tf_keras.protobuf import saved_metadata_pb2

    from tinyprune.load.keras_metadata import read_nodes

    folder = _savedmodel_without_space(keras_mod, tmp_path, marker)
    with pytest.raises(ModelLoadError, match="'evil' is a Lambda layer"):
        load_model(folder)
    assert not marker.exists()
    # the wire-format reader sees exactly what protobuf (and so tf_keras) sees
    raw = (folder / "keras_metadata.pb").read_bytes()
    proto = saved_metadata_pb2.SavedMetadata()
    proto.ParseFromString(raw)
    ours = read_nodes(raw)
    assert [(n.node_path, n.identifier, n.metadata) for n in ours] == \
        [(n.node_path, n.identifier, [json.loads(n.metadata)]) for n in proto.nodes]


def _h5_userblock_polyglot(keras, tmp_path: Path, marker: Path) -> Path:
    """An HDF5 model with a 512-byte user block starting with PK\\x03\\x04, a harmless .keras appended."""
    import h5py

    evil = _marker_lambda_model(keras, marker)
    plain_h5 = tmp_path / "evil_plain.h5"
    evil.save(plain_h5)
    harmless = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    harmless_keras = tmp_path / "harmless.keras"
    harmless.save(harmless_keras)
    poly = tmp_path / "poly.h5"
    with h5py.File(plain_h5, "r") as src, h5py.File(poly, "w", userblock_size=512) as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for k in src:
            src.copy(k, dst)
    data = bytearray(poly.read_bytes())
    data[:4] = b"PK\x03\x04"
    poly.write_bytes(bytes(data) + harmless_keras.read_bytes())
    if marker.exists():
        marker.unlink()
    assert zipfile.is_zipfile(poly) and h5py.is_hdf5(poly)
    return poly


def test_h5_userblock_zip_polyglot_is_refused(keras_mod, tmp_path, marker):
    from tinyprune.load.model import load_model

    poly = _h5_userblock_polyglot(keras_mod, tmp_path, marker)
    with pytest.raises(ModelLoadError, match="polyglot"):
        load_model(poly)
    as_keras = poly.with_suffix(".keras")
    shutil.copy(poly, as_keras)
    with pytest.raises(ModelLoadError, match="polyglot"):
        load_model(as_keras)
    assert not marker.exists()


def test_h5_with_plain_userblock_is_refused(keras_mod, tmp_path, marker):
    import h5py

    from tinyprune.load.model import load_model

    plain = tmp_path / "evil.h5"
    _marker_lambda_model(keras_mod, marker).save(plain)
    ub = tmp_path / "ub.h5"
    with h5py.File(plain, "r") as src, h5py.File(ub, "w", userblock_size=512) as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for k in src:
            src.copy(k, dst)
    if marker.exists():
        marker.unlink()
    with pytest.raises(ModelLoadError, match="user block"):
        load_model(ub)


@pytest.mark.slow
def test_hostile_models_through_prune_and_run(keras_mod, tmp_path, marker):
    """The code-execution cases through the CLI: the SavedModel through prune, the polyglot through
    run (the library tests above take each through the loader both commands share). Exit 2, one
    line, marker absent."""
    folder = _savedmodel_without_space(keras_mod, tmp_path, marker)
    poly = _h5_userblock_polyglot(keras_mod, tmp_path, marker)
    proc = run_cli(["prune", str(folder), "--data", "digits", "-o", str(tmp_path / "out")])
    assert proc.returncode == 2, proc.stderr
    assert "Lambda" in stderr_one_line(proc)
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[model]\npath = "{poly}"\n[data]\nsource = "digits"\n')
    proc = run_cli(["run", str(cfg), "-o", str(tmp_path / "runout")])
    assert proc.returncode == 2, proc.stderr
    assert "polyglot" in stderr_one_line(proc)
    assert not marker.exists()


def test_model_config_json_list_is_refused(tmp_path):
    import h5py

    from tinyprune.load.model import load_model

    path = tmp_path / "list.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps([{"class_name": "Sequential"}])
    with pytest.raises(ModelLoadError, match="JSON list"):
        load_model(path)


def test_unsafe_load_still_loads_a_trusted_lambda(keras_mod, tmp_path):
    from tinyprune.load.model import load_model

    inp = keras_mod.Input((4,))
    out = keras_mod.layers.Lambda(lambda t: t * 2.0, name="double")(inp)
    path = tmp_path / "trusted.h5"
    keras_mod.Model(inp, out).save(path)
    with pytest.raises(ModelLoadError):
        load_model(path)
    assert load_model(path, unsafe=True).output_shape == (None, 4)
