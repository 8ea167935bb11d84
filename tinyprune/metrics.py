"""How a model's outputs are scored against labels: one definition for every job.

`score` is top-1 accuracy for integer class labels and negative mean squared error for
regression targets (higher is better either way); `top1` is accuracy alone, `agreement`
the share of samples on which two models pick the same class. Plain NumPy: no TensorFlow,
so TFLM results are scored the same way as Keras ones. This module does not run models.
"""

from __future__ import annotations

import numpy as np


def is_class_labels(y: np.ndarray | None) -> bool:
    """True for a 1-D integer label vector (a classification task)."""
    return y is not None and y.ndim == 1 and np.issubdtype(y.dtype, np.integer)


def top1(y_pred: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples whose highest output is the label."""
    return float((np.asarray(y_pred).reshape(len(labels), -1).argmax(axis=1) == labels).mean())


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of samples on which the two outputs pick the same class."""
    a, b = np.asarray(a), np.asarray(b)
    return float((a.reshape(len(a), -1).argmax(axis=1) == b.reshape(len(b), -1).argmax(axis=1)).mean())


def score(y_pred: np.ndarray, y_true: np.ndarray) -> float:
    """Top-1 accuracy for class labels; negative mean squared error for regression targets."""
    if is_class_labels(y_true):
        return top1(y_pred, y_true)
    return -float(np.mean((np.asarray(y_pred).reshape(y_true.shape) - y_true) ** 2))
