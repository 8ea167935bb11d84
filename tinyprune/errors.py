"""Error types for tinyprune (the Keras side).

Every error a user can cause is one of these. Its message is one line that says what was
wrong and what to do; the CLI prints it on stderr and exits with code 2. Programming errors
are not wrapped: they surface as ordinary exceptions.

The types that the TensorFlow-free side raises live in `firmware_export.errors` and are
re-exported here; `TinypruneError` is their common base, so both packages' errors are caught
by one `except TinypruneError`. firmware_export never imports this module.
"""

from firmware_export.errors import (BoardError, ConfigError, InputFileError, OutputExistsError, TfliteFormatError,
                                    TflmError)
from firmware_export.errors import UserError as TinypruneError

__all__ = ["TinypruneError", "InputFileError", "ModelLoadError", "DataError", "ConfigError", "UnsupportedLayerError",
           "LayerCollapseError", "TfliteFormatError", "TflmError", "OutputExistsError", "BoardError", "BudgetError",
           "MissingExtraError"]


class ModelLoadError(TinypruneError):
    """A Keras model could not be loaded safely (format, subclassing, unsafe code)."""


class DataError(TinypruneError):
    """A dataset is missing keys, has the wrong shapes, or cannot be split."""


class UnsupportedLayerError(TinypruneError):
    """A layer the requested operation cannot handle."""


class LayerCollapseError(TinypruneError):
    """Pruning removed every weight (or channel) of a layer."""


class BudgetError(TinypruneError):
    """A resource budget that cannot be met or parsed."""


class MissingExtraError(TinypruneError):
    """An option needs an optional extra that is not installed (e.g. --ray needs tinyprune[ray])."""
