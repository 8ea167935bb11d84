"""Reproduce models/digits_cnn.h5, the bundled demo model.

A small CNN for scikit-learn's 8x8 digits (bundled with scikit-learn, no download):
Conv-BN-ReLU x2, max-pool, Conv-ReLU, Flatten, Dense-ReLU, Dropout, Dense-softmax
(about 30k parameters, about 40 KB as int8). Trained for 40 epochs with Adam on the
80% training split that `tinyprune.load.data.load_digits()` makes; seeds fixed.

Run from the repository root:  .venv/bin/python models/make_digits_cnn.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinyprune.load.data import load_digits  # noqa: E402
from tinyprune.tfsetup import keras, tf  # noqa: E402

OUT = Path(__file__).with_name("digits_cnn.h5")
EPOCHS = 40
SEED = 1


def build() -> "keras.Model":
    inp = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1")(inp)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", use_bias=False, name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(32, activation="relu", name="fc1")(x)
    x = keras.layers.Dropout(0.2, name="drop")(x)
    out = keras.layers.Dense(10, activation="softmax", name="classes")(x)
    return keras.Model(inp, out, name="digits_cnn")


def main() -> None:
    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    ds = load_digits()
    model = build()
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(ds.x_train, ds.y_train, epochs=EPOCHS, batch_size=32, verbose=0,
              validation_data=(ds.x_val, ds.y_val))
    loss, acc = model.evaluate(ds.x_val, ds.y_val, verbose=0)
    print(f"validation accuracy {acc:.4f} (loss {loss:.4f}), {model.count_params()} parameters")
    model.save(OUT, include_optimizer=False)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
