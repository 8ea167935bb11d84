"""The one place that starts TensorFlow.

tfmot 0.8.x works only with tf_keras (Keras 2), and TensorFlow picks its Keras at import
time, so TF_USE_LEGACY_KERAS=1 must be set before `import tensorflow`. Every module of
tinyprune that needs TensorFlow, tf_keras or tfmot imports them from here:

    from tinyprune.tfsetup import tf, keras, tfmot

This module also quiets TensorFlow's C++ logging (TF_CPP_MIN_LOG_LEVEL, unless set), and caps
TensorFlow's thread pools when TINYPRUNE_TF_THREADS=N is set (intra- and inter-op, before
TensorFlow starts: the only moment they can be set; sweep workers use it to stay within the
CPUs they were given). It does not load models or data.
Importing it costs about 5 s, so the CLI imports Keras-side modules only inside commands
that need them; `firmware_export` never imports this module.
"""

import os
import warnings

os.environ["TF_USE_LEGACY_KERAS"] = "1"
# Hide INFO, WARNING and ERROR lines of the C++ side (a failure reaches Python as an exception
# either way). TensorFlow 2.21's tf.data logs a harmless ERROR per training run ("NodeDef mentions
# attribute use_unbounded_threadpool which is not in the op definition"), which would otherwise
# reach the terminal of every `--quiet` sweep and budget run. Set TF_CPP_MIN_LOG_LEVEL=0 to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# tinyprune trains small models on the CPU; without this TF probes for CUDA and logs an error.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import sys  # noqa: E402


def _native_stderr_silenced(start):
    """Run `start` with file descriptor 2 pointed at /dev/null, then restore it.

    TensorFlow's C++ start-up messages (absl "WARNING: All log messages before
    absl::InitializeLog()", oneDNN and CUDA probes, cuInit) ignore TF_CPP_MIN_LOG_LEVEL and
    would break the CLI's one-line-on-stderr contract for errors raised after import.
    """
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        return start()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


THREADS_ENV = "TINYPRUNE_TF_THREADS"


def _threads() -> int | None:
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        from tinyprune.errors import ConfigError

        raise ConfigError(f"{THREADS_ENV}={value!r}: give a whole number of threads >= 1, or unset it")
    return int(value)


def _start():
    threads = _threads()
    import tensorflow as tf
    import tf_keras as keras
    import tensorflow_model_optimization as tfmot

    if threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)

    tf.config.list_logical_devices()  # device probing (cuInit) logs here, not at the first op
    return tf, keras, tfmot


tf, keras, tfmot = _native_stderr_silenced(_start)

tf.get_logger().setLevel("ERROR")
# tinyprune saves .h5 on purpose (the format tfmot and most TinyML tools read); the advice is noise.
warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")

__all__ = ["tf", "keras", "tfmot"]
