"""Error types of firmware_export, the TensorFlow-free side.

Every error a user can cause here is one of these. Its message is one line that says what was
wrong and what to do; the CLI prints it on stderr and exits with `exit_code` (2). Programming
errors are not wrapped: they surface as ordinary exceptions.

`tinyprune.errors` re-exports these and adds the Keras side's own types, all under the same
base, so one `except UserError` (alias `tinyprune.errors.TinypruneError`) catches both.
This module imports nothing.
"""


class UserError(Exception):
    """Base class: a problem with the user's input or environment (CLI exit code 2)."""

    exit_code = 2


class InputFileError(UserError):
    """A file or folder is missing, unreadable, or not of the expected kind."""


class ConfigError(UserError):
    """A configuration value or option is out of range or inconsistent."""


class TfliteFormatError(UserError):
    """A file is not a valid .tflite flatbuffer, or is truncated."""


class TflmError(UserError):
    """TensorFlow Lite Micro cannot run a model (missing op, allocation failure, abort)."""


class TflmCrash(TflmError):
    """TFLM aborted, crashed or hung on the model (in its child process): the model is unusable as is."""


class OutputExistsError(UserError):
    """An output already exists and --force was not given."""


class BoardError(UserError):
    """An unknown board name or a malformed board profile."""
