"""Error types for tinyprune and firmware_export.

Every error a user can cause is one of these. Its message is one line that says what was
wrong and what to do; the CLI prints it on stderr and exits with code 2. Programming errors
are not wrapped: they surface as ordinary exceptions.

This module imports nothing heavy, so both packages may use it.
"""


class TinypruneError(Exception):
    """Base class: a problem with the user's input or environment (CLI exit code 2)."""

    exit_code = 2


class InputFileError(TinypruneError):
    """A file or folder is missing, unreadable, or not of the expected kind."""


class ModelLoadError(TinypruneError):
    """A Keras model could not be loaded safely (format, subclassing, unsafe code)."""


class DataError(TinypruneError):
    """A dataset is missing keys, has the wrong shapes, or cannot be split."""


class ConfigError(TinypruneError):
    """A configuration value or option is out of range or inconsistent."""


class UnsupportedLayerError(TinypruneError):
    """A layer the requested operation cannot handle."""


class LayerCollapseError(TinypruneError):
    """Pruning removed every weight (or channel) of a layer."""


class TfliteFormatError(TinypruneError):
    """A file is not a valid .tflite flatbuffer, or is truncated."""


class TflmError(TinypruneError):
    """TensorFlow Lite Micro cannot run a model (missing op, allocation failure)."""


class OutputExistsError(TinypruneError):
    """An output already exists and --force was not given."""


class BoardError(TinypruneError):
    """An unknown board name or a malformed board profile."""


class BudgetError(TinypruneError):
    """A resource budget that cannot be met or parsed."""
