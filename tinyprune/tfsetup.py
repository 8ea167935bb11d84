"""The one place that starts TensorFlow.

tfmot 0.8.x works only with tf_keras (Keras 2), and TensorFlow picks its Keras at import
time, so TF_USE_LEGACY_KERAS=1 must be set before `import tensorflow`. Every module of
tinyprune that needs TensorFlow, tf_keras or tfmot imports them from here:

    from tinyprune.tfsetup import tf, keras, tfmot

This module also quiets TensorFlow's C++ logging. It does not load models or data.
Importing it costs about 5 s, so the CLI imports Keras-side modules only inside commands
that need them; `firmware_export` never imports this module.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide INFO and WARNING from the C++ side
# tinyprune trains small models on the CPU; without this TF probes for CUDA and logs an error.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402

tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "keras", "tfmot"]
