"""firmware_export stands alone: importing all of it loads neither TensorFlow nor tinyprune."""

from __future__ import annotations

import pkgutil

import firmware_export
from tests.helpers import ROOT, loaded_modules_after

MODULES = sorted(m.name for m in pkgutil.iter_modules(firmware_export.__path__, "firmware_export."))


def test_every_module_is_listed():
    assert "firmware_export.tflite_model" in MODULES and "firmware_export.errors" in MODULES


def test_import_loads_neither_tensorflow_nor_tinyprune():
    loaded = loaded_modules_after("\n".join(f"import {m}" for m in MODULES))
    assert "firmware_export" in loaded
    assert not loaded & {"tensorflow", "tf_keras", "keras", "tinyprune", "tensorflow_model_optimization"}, loaded


def test_no_source_file_imports_tinyprune():
    offenders = [p.name for p in (ROOT / "firmware_export").rglob("*.py")
                 if any(line.lstrip().startswith(("import tinyprune", "from tinyprune"))
                        for line in p.read_text().splitlines())]
    assert offenders == []


def test_tinyprune_errors_share_the_firmware_base():
    from firmware_export.errors import UserError
    from tinyprune.errors import BudgetError, ConfigError, TinypruneError

    assert TinypruneError is UserError
    assert issubclass(BudgetError, UserError) and issubclass(ConfigError, TinypruneError)
