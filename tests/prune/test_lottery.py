"""Iterative Magnitude Pruning with rewinding: exact rewinds, held masks, schedule, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import run_cli, stderr_one_line


def _small_cnn(seed: int = 0):
    from tinyprune.tfsetup import keras, tf

    tf.random.set_seed(seed)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inp)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    out = keras.layers.Dense(10, name="fc")(h)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def small_ds(digits):
    return digits.subset(500, 150)


def test_imp_rewinds_survivors_exactly_to_initial_values(small_ds):
    from tinyprune.prune.at_init.lottery import lottery_ticket
    from tinyprune.prune.at_init.scores import prunable_layers

    model = _small_cnn()
    init = [w.copy() for w in model.get_weights()]
    init_kernels = {n: k.numpy().copy() for n, k in prunable_layers(model).items()}

    res = lottery_ticket(model, small_ds, compression=4.0, rounds=2, epochs=1, train_final=False, quiet=True)

    total = sum(m.size for m in res.masks.values())
    assert sum(int(m.sum()) for m in res.masks.values()) == round(total / 4.0)
    assert [round(h.compression, 9) for h in res.history] == [2.0, 4.0]
    for a, b in zip(res.rewind_weights, init):  # the stored rewind point is the initialization
        np.testing.assert_array_equal(a, b)
    for name, mask in res.masks.items():
        ticket = res.ticket_kernels[name]
        np.testing.assert_array_equal(ticket[mask], init_kernels[name][mask])  # survivors: bit-exact init
        assert np.all(ticket[~mask] == 0)
    # every other weight (biases, BatchNorm gamma/beta/moving stats) is back at its initial value too
    kernel_ids = {id(k) for k in prunable_layers(model).values()}
    for var, w0 in zip(model.weights, init):
        if id(var) not in kernel_ids:
            np.testing.assert_array_equal(var.numpy(), w0)
    # the masks come from the TRAINED weights: magnitude at init would pick a different set
    from tinyprune.prune.at_init.masks import global_masks

    at_init = global_masks({n: np.abs(k) for n, k in init_kernels.items()}, 4.0)
    assert any(not np.array_equal(at_init[n], res.masks[n]) for n in res.masks)
    assert all(0.0 <= h.val_score <= 1.0 for h in res.history)


def test_imp_rewind_epoch_uses_the_checkpoint_and_masks_hold(small_ds):
    from tinyprune.prune.at_init.lottery import lottery_ticket
    from tinyprune.prune.at_init.scores import prunable_layers

    model = _small_cnn(seed=1)
    init_kernels = {n: k.numpy().copy() for n, k in prunable_layers(model).items()}
    res = lottery_ticket(model, small_ds, compression=3.0, rounds=1, epochs=2, rewind_epoch=1, quiet=True)

    # rewind point = weights after epoch 1 of round 1, not the initialization
    index = {name: next(i for i, v in enumerate(model.weights) if v is k)
             for name, k in prunable_layers(model).items()}
    ckpt = {name: res.rewind_weights[i] for name, i in index.items()}
    for name, mask in res.masks.items():
        assert not np.array_equal(ckpt[name], init_kernels[name])
        np.testing.assert_array_equal(res.ticket_kernels[name][mask], ckpt[name][mask])
    # the final ticket was trained with its masks held: pruned weights are still exactly zero
    for name, k in prunable_layers(model).items():
        w = k.numpy()
        assert np.all(w[~res.masks[name]] == 0)
        assert np.any(w[res.masks[name]] != res.ticket_kernels[name][res.masks[name]])
    assert res.final_score is not None and 0.0 <= res.final_score <= 1.0


def test_prune_fraction_per_round_reaches_compression():
    from tinyprune.prune.at_init.lottery import prune_fraction_per_round

    assert prune_fraction_per_round(100.0, 2) == pytest.approx(0.9)
    p = prune_fraction_per_round(10.0, 5)
    assert (1 - p) ** 5 == pytest.approx(0.1)


@pytest.mark.parametrize("kwargs", [dict(rewind_epoch=3, epochs=2), dict(epochs=0), dict(rounds=0),
                                    dict(compression=0.9)])
def test_imp_bad_settings(kwargs, small_ds):
    from tinyprune.errors import ConfigError
    from tinyprune.prune.at_init.lottery import lottery_ticket

    args = dict(compression=4.0, rounds=2, epochs=1, quiet=True) | kwargs
    with pytest.raises(ConfigError):
        lottery_ticket(_small_cnn(), small_ds, **args)


def test_cli_imp_without_data_is_one_line(demo_model_path, tmp_path):
    proc = run_cli(["prune", str(demo_model_path), "--method", "imp", "--compression", "10", "-o", str(tmp_path / "o")])
    assert proc.returncode == 2
    assert "--data" in stderr_one_line(proc)


def test_cli_imp_end_to_end(demo_model_path, tmp_path):
    out = tmp_path / "imp"
    proc = run_cli(["prune", str(demo_model_path), "--method", "imp", "--compression", "4", "--rounds", "2",
                    "--epochs", "1", "--data", "digits", "--json", "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["method"] == "imp" and len(report["history"]) == 2
    assert report["prune_fraction_per_round"] == pytest.approx(0.5)
    assert abs(report["kept_fraction"] - 0.25) < 1e-3
    from tinyprune.load.model import load_model
    from tinyprune.prune.at_init.scores import prunable_layers

    kernels = [k.numpy() for k in prunable_layers(load_model(out / "model.h5")).values()]
    kept = sum(int((k != 0).sum()) for k in kernels) / sum(k.size for k in kernels)
    assert kept == pytest.approx(report["kept_fraction"], abs=1e-6)  # the saved model has the reported zeros
