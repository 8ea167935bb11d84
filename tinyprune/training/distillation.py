"""Knowledge distillation: fine-tune a pruned (student) model to match the unpruned (teacher).

The loss on every batch is

    weight * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - weight) * CE(labels, student)

(Hinton et al. 2015) for class outputs, with `T` the temperature; for regression outputs it is
`weight * MSE(teacher, student) + (1 - weight) * MSE(targets, student)`. Models that end in a
softmax are compared through their log-probabilities, which are logits up to a constant.

The teacher's outputs are computed once, before training (the teacher is frozen), and travel
with the labels in one packed target array [teacher outputs | label(s) | has label], so that
Keras' `fit` (shuffling, early stopping on the validation loss) works unchanged. Without labels
(`labels=None`, unlabelled data) the loss is the teacher term alone.

Function matching (`DistillConfig.mixup`; 0 = off, the budget search's default is 4): the
training set is extended by `mixup` x n mixed inputs lam * x_a + (1 - lam) * x_b (random pairs,
lam ~ U(0, 1)) labelled by the teacher alone (Beyer et al. 2022, "Knowledge distillation: a good
teacher is patient and consistent": the student learns the teacher's function between the
training points, which is what a few hundred images cannot show it). The mixed rows together
weigh as much as the training rows (sample weight n / mixed rows each), so the real data keep
half the loss however many mixes there are. At most MAX_MIXED_ROWS mixed rows; floating-point
inputs only (token ids do not mix). Validation stays on the clean, labelled data.

A model that ends in a softmax is trained and queried through its logits (`logits_head`: the
softmax is split off for the duration, the weights are the model's own): taking the log of
probabilities instead clips at float32's small values and has no gradient where the student is
already confident, which is most of a trained classifier's wrong classes.

This module trains; it does not prune, quantize or choose what to keep.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import Iterator, Sequence

import numpy as np

from tinyprune.errors import ConfigError
from tinyprune.keras_facts import unwrap
from tinyprune.load.data import Dataset
from tinyprune.tfsetup import keras, tf
from tinyprune.training.finetune import DEFAULT_LR, RichProgress, ends_in_softmax, predict
from tinyprune.training.limits import DEFAULT_TEMPERATURE, DEFAULT_WEIGHT, MAX_MIXUP  # noqa: F401  (re-exported)

_EPS = 1e-7
# Mixed rows at most: function matching matters where data is scarce; a full training set
# gains little from more, and its training time grows with every row added.
MAX_MIXED_ROWS = 10_000


@dataclass
class DistillConfig:
    """Distillation settings. `weight` is the teacher term's share (1.0 = teacher only)."""

    temperature: float = DEFAULT_TEMPERATURE
    weight: float = DEFAULT_WEIGHT
    mixup: int = 0  # mixed inputs per training row, labelled by the teacher (function matching)

    def validate(self) -> None:
        if not self.temperature > 0:
            raise ConfigError(f"--temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.weight <= 1.0:
            raise ConfigError(f"--distill-weight must be in [0, 1], got {self.weight}")
        if isinstance(self.mixup, bool) or not isinstance(self.mixup, int) or not 0 <= self.mixup <= MAX_MIXUP:
            raise ConfigError(f"mixup must be a whole number of mixed rows per training row in [0, {MAX_MIXUP}], "
                              f"got {self.mixup!r}")


@dataclass
class DistillResult:
    """What one distillation fine-tune did."""

    epochs_run: int
    temperature: float
    weight: float  # the teacher term's share actually used (1.0 when there were no labels)
    labels_used: bool
    history: dict = field(default_factory=dict)
    mixed_rows: int = 0  # teacher-labelled mixed inputs added to the training rows

    def to_dict(self) -> dict:
        return asdict(self)


def _log_space(probs_or_logits: np.ndarray, softmax: bool) -> np.ndarray:
    """Outputs as logits (log-probabilities for outputs that are probabilities)."""
    if softmax:
        return np.log(np.clip(probs_or_logits, _EPS, 1.0)).astype(np.float32)
    return probs_or_logits.astype(np.float32)


def _reset_compiled(model) -> None:
    """Drop the traced train/test/predict functions (they captured the old head)."""
    for name in ("train_function", "test_function", "predict_function"):
        if hasattr(model, name):
            setattr(model, name, None)


@contextlib.contextmanager
def logits_head(model) -> Iterator[tuple[object, bool]]:
    """(a model computing `model`'s logits with `model`'s own weights, True), or (model, False)
    when the output is not a softmax or its logits cannot be split off.

    A last Softmax / Activation("softmax") layer is left out (a functional view of the layers
    before it); a softmax activation inside the last layer is set to linear for the duration
    and restored on exit, with the traced functions of the model dropped both times."""
    if not ends_in_softmax(model):
        yield model, False
        return
    last = model.layers[-1]
    inner = unwrap(last)
    if last is inner and type(last).__name__ in ("Softmax", "Activation"):
        try:
            view = keras.Model(model.inputs, last.input)
        except (AttributeError, ValueError, TypeError):  # e.g. a subclassed model: no graph to cut
            yield model, False
            return
        yield view, True
        return
    if last is not inner or not hasattr(last, "activation"):  # under a tfmot wrapper: leave it alone
        yield model, False
        return
    softmax = last.activation
    last.activation = keras.activations.linear
    _reset_compiled(model)
    try:
        yield model, True
    finally:
        last.activation = softmax
        _reset_compiled(model)


class _DistillLoss(keras.losses.Loss):
    """Loss on packed targets [teacher outputs (n) | label (1)] (see the module docstring)."""

    def __init__(self, n_out: int, classification: bool, student_softmax: bool, temperature: float,
                 weight: float, name: str = "distill"):
        super().__init__(name=name)
        self.n_out, self.classification, self.student_softmax = n_out, classification, student_softmax
        self.temperature, self.weight = float(temperature), float(weight)

    def call(self, y_true, y_pred):
        teacher = y_true[:, : self.n_out]
        has_label = y_true[:, -1]  # 0 on teacher-only rows (mixed inputs): the teacher term alone
        w = self.weight * has_label + (1.0 - has_label)
        y_pred = tf.reshape(y_pred, (-1, self.n_out))
        if not self.classification:
            kd = tf.reduce_mean(tf.square(teacher - y_pred), axis=-1)
            hard = tf.reduce_mean(tf.square(tf.reshape(y_true[:, self.n_out:-1], tf.shape(y_pred)) - y_pred),
                                  axis=-1) if self.weight < 1.0 else 0.0
            return w * kd + (1.0 - w) * hard
        logits = tf.math.log(tf.clip_by_value(y_pred, _EPS, 1.0)) if self.student_softmax else y_pred
        t = self.temperature
        p_teacher = tf.nn.softmax(teacher / t)
        log_p_student = tf.nn.log_softmax(logits / t)
        kd = tf.reduce_sum(p_teacher * (tf.math.log(tf.clip_by_value(p_teacher, _EPS, 1.0)) - log_p_student),
                           axis=-1) * (t * t)
        if self.weight >= 1.0:
            return kd
        onehot = tf.one_hot(tf.cast(y_true[:, self.n_out], tf.int32), self.n_out)
        hard = -tf.reduce_sum(onehot * tf.nn.log_softmax(logits), axis=-1)
        return w * kd + (1.0 - w) * hard


def _pack(teacher_out: np.ndarray, labels: np.ndarray | None, classification: bool) -> np.ndarray:
    """[teacher outputs | label(s), zeros without | 1 where labelled, else 0] per row."""
    n = len(teacher_out)
    t = teacher_out.reshape(n, -1).astype(np.float32)
    if labels is None:
        extra = np.zeros((n, 1 if classification else t.shape[1]), np.float32)
    else:
        extra = labels.reshape(n, -1).astype(np.float32)
    flag = np.full((n, 1), 0.0 if labels is None else 1.0, np.float32)
    return np.concatenate([t, extra, flag], axis=1)


def mixed_inputs(x: np.ndarray, copies: int, rng: np.random.Generator) -> np.ndarray:
    """`copies` x len(x) rows (at most MAX_MIXED_ROWS) of lam * x_a + (1 - lam) * x_b, random
    pairs a, b and lam ~ U(0, 1) per row; none for non-float inputs."""
    n = min(copies * len(x), MAX_MIXED_ROWS)
    if n <= 0 or len(x) < 2 or not np.issubdtype(x.dtype, np.floating):
        return x[:0]
    a, b = rng.integers(0, len(x), n), rng.integers(0, len(x), n)
    lam = rng.uniform(0.0, 1.0, (n,) + (1,) * (x.ndim - 1)).astype(x.dtype)
    return lam * x[a] + (1.0 - lam) * x[b]


def distill(student, teacher, ds: Dataset, epochs: int, batch_size: int = 32, *,
            config: DistillConfig | None = None, labels: bool = True, lr: float = DEFAULT_LR,
            early_stopping: int = 0, description: str = "distilling", quiet: bool = False,
            classification: bool | None = None, callbacks: Sequence = ()) -> DistillResult:
    """Fine-tune `student` toward `teacher` on ds.x_train, validating on ds.x_val (compiles it).

    `labels=False` (or a Dataset whose y_train is None) trains on the teacher alone: the
    weight of the teacher term becomes 1. `classification` defaults to ds.is_classification
    (class labels), or, without labels, to the teacher ending in a softmax / having >1 output.
    `early_stopping` > 0 stops after that many epochs without a better validation loss
    (the distillation loss on ds.x_val) and restores the best weights.
    """
    config = config or DistillConfig()
    config.validate()
    has_labels = labels and ds.y_train is not None and ds.y_val is not None
    if classification is None:
        classification = ds.is_classification if has_labels else int(np.prod(teacher.output_shape[1:])) > 1
    weight = config.weight if has_labels else 1.0
    n_out = int(np.prod(student.output_shape[1:]))
    x_mix = ds.x_train[:0]
    if config.mixup > 0:  # drawn from NumPy's global state, which training.seed fixes: same --seed, same mixes
        x_mix = mixed_inputs(ds.x_train, config.mixup, np.random.default_rng(np.random.randint(0, 2**31 - 1)))
    with logits_head(teacher) as (t_model, t_logits):
        t_train, t_val = predict(t_model, ds.x_train), predict(t_model, ds.x_val)
        t_mix = predict(t_model, x_mix) if len(x_mix) else t_train[:0]
    if classification:
        soft = ends_in_softmax(teacher) and not t_logits
        t_train, t_val, t_mix = _log_space(t_train, soft), _log_space(t_val, soft), _log_space(t_mix, soft)
    y_train = _pack(t_train, ds.y_train if has_labels else None, classification)
    y_val = _pack(t_val, ds.y_val if has_labels else None, classification)
    x_train, weights = ds.x_train, None
    if len(x_mix):
        y_mix = _pack(t_mix, None, classification)  # as wide as y_train: a label slot of zeros, flag 0
        x_train, y_train = np.concatenate([x_train, x_mix]), np.concatenate([y_train, y_mix])
        # the mixes weigh as much as the training rows together, however many there are
        weights = np.concatenate([np.ones(len(ds.x_train), np.float32),
                                  np.full(len(x_mix), len(ds.x_train) / len(x_mix), np.float32)])
    with logits_head(student) as (s_model, s_logits):
        loss = _DistillLoss(n_out, classification, ends_in_softmax(student) and not s_logits, config.temperature,
                            weight)
        s_model.compile(keras.optimizers.Adam(lr), loss)
        if epochs <= 0:
            return DistillResult(0, config.temperature, weight, has_labels, mixed_rows=len(x_mix))
        cbs = [*callbacks, RichProgress(description, epochs, quiet)]
        if early_stopping > 0:
            cbs.append(keras.callbacks.EarlyStopping("val_loss", patience=early_stopping, restore_best_weights=True))
        hist = s_model.fit(x_train, y_train, sample_weight=weights, validation_data=(ds.x_val, y_val),
                           epochs=epochs, batch_size=batch_size, callbacks=cbs, verbose=0, shuffle=True)
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    return DistillResult(len(history.get("loss", [])), config.temperature, weight, has_labels, history,
                         len(x_mix))
