"""Quantize: full-integer int8 conversion for TFLM, and parity checks.

`int8` converts a tf_keras model to an int8 .tflite (post-training with a representative
dataset, or quantization-aware training); `parity` compares the float model, the TFLite
interpreter and the TFLM interpreter on validation data. It does not prune or export C.
"""
