"""tinyprune: prune, quantize and export Keras models for TensorFlow Lite Micro.

Importing this package is cheap: it never imports TensorFlow. The Keras-side packages
(`load`, `prune`, `quantize`, `training`, `budget`, `pipeline`; docs/architecture.md) pull
TensorFlow in through `tinyprune.tfsetup` when they are imported; the firmware side
(`firmware_export`) never does.
"""

__version__ = "0.1.0"
