"""firmware_export: everything after the .tflite file, without TensorFlow.

Reads .tflite flatbuffers, runs them in the real TensorFlow Lite Micro interpreter
(the `tflite-micro` package), writes C source for firmware, and estimates flash, RAM and
latency per board. Nothing in this package imports TensorFlow, tf_keras or tfmot: commands
that only read a .tflite stay fast.
"""
