"""Models that adapt to the data they get: ``auto`` sequence settings chosen from the
training histories, and the training budget a model's own config sets."""

from __future__ import annotations

import numpy as np
import pytest

from recframe.api import AUTO, ConfigError, DataInfo, resolve_sequence_settings
from recframe.models.sequence_settings import (
    MAX_AUTO_LEN,
    auto_max_seq_len,
    auto_train_rows,
    untrained_share,
)
from recframe.params import model_build_config


def _info(lengths, timestamps: bool = True) -> DataInfo:
    lengths = np.asarray(lengths)
    return DataInfo(n_users=len(lengths), n_items=50, has_timestamps=timestamps,
                    train_history_lengths=lengths, name="toy")


@pytest.mark.parametrize(("median", "expected"), [
    (6, 50), (37, 50), (50, 50), (51, 100), (120, 150), (900, MAX_AUTO_LEN)])
def test_auto_max_seq_len_covers_the_median_history(median, expected):
    lengths = [median] * 5 + [1, 2000] + [0] * 3  # users without train items are ignored
    assert auto_max_seq_len(_info(lengths))[0] == expected


def test_untrained_share_against_a_loop():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 300, size=200)
    brute = sum(max(n - 51, 0) for n in lengths) / lengths.sum()
    assert untrained_share(_info(lengths), 50) == pytest.approx(brute)


def test_auto_train_rows_windows_only_when_recent_loses_data():
    short = _info([10, 20, 30, 51])  # every history fits max_seq_len + 1
    assert auto_train_rows(short, 50)[0] == "recent"
    long = _info([10, 20, 400])  # most interactions fall outside the last 51
    assert auto_train_rows(long, 50)[0] == "windows"
    # just above and below the 10% threshold
    assert auto_train_rows(_info([51] * 9 + [57]), 50)[0] == "recent"  # 6 / 516
    assert auto_train_rows(_info([51] * 4 + [81]), 50)[0] == "windows"  # 30 / 285


def test_resolve_records_what_auto_chose_and_keeps_explicit_values():
    info = _info([300] * 10)
    length, rows, choices = resolve_sequence_settings(
        info, {"max_seq_len": AUTO, "train_rows": AUTO})
    assert (length, rows) == (200, "windows")
    assert choices["max_seq_len"]["value"] == 200 and "median" in choices["max_seq_len"]["why"]
    assert choices["train_rows"]["value"] == "windows"
    length, rows, choices = resolve_sequence_settings(
        info, {"max_seq_len": 20, "train_rows": "recent"})
    assert (length, rows, choices) == (20, "recent", {})


@pytest.mark.parametrize(("cfg", "match"), [
    ({"max_seq_len": "long"}, r"model\.max_seq_len must be 'auto' or an integer >= 1"),
    ({"max_seq_len": 0}, r"model\.max_seq_len must be 'auto' or an integer"),
    ({"train_rows": "all"}, r"model\.train_rows must be 'auto' or one of recent, windows"),
])
def test_bad_sequence_settings_name_the_key(cfg, match):
    with pytest.raises(ConfigError, match=match):
        resolve_sequence_settings(_info([10, 20]), cfg)


def test_auto_on_data_without_order_says_the_fix():
    with pytest.raises(ConfigError, match=r"model\.max_seq_len=auto .* no timestamps .* "
                                          r"set model\.max_seq_len explicitly"):
        resolve_sequence_settings(_info([10, 20], timestamps=False), {"max_seq_len": AUTO})


def test_sequence_model_built_on_long_histories_records_its_choices(compose):
    from recframe.runner import build_experiment

    exp = build_experiment(compose(
        "model=gru4rec", "split=leave_one_out", "dataset.n_users=40", "dataset.n_items=400",
        "dataset.mean_per_user=300", "dataset.min_per_user=280"))
    assert exp.model.max_seq_len == MAX_AUTO_LEN  # median history ~300 -> capped
    assert exp.model.train_rows == "windows"
    assert set(exp.model.data_choices) == {"max_seq_len", "train_rows", "batch_size"}
    assert exp.datamodule.make_train_set().rows == "windows"


def test_a_models_training_block_sets_its_budget(compose):
    cfg = compose("model=gru4rec", fast=False)
    assert cfg.trainer.max_epochs == 200 and cfg.trainer.min_epochs == 10
    assert cfg.callbacks.early_stopping.patience == 10
    cfg = compose("model=bert4rec", fast=False)
    assert cfg.callbacks.early_stopping.patience == 20 and cfg.trainer.min_epochs == 20
    plain = compose("model=ease", fast=False)  # no training block: the global defaults
    assert plain.trainer.max_epochs == 100 and plain.trainer.min_epochs is None
    assert plain.callbacks.early_stopping.patience == 5


def test_command_line_values_win_over_the_models_budget(compose):
    cfg = compose("model=sasrec", "callbacks.early_stopping.patience=3",
                  "trainer.max_epochs=7", fast=False)
    assert cfg.callbacks.early_stopping.patience == 3 and cfg.trainer.max_epochs == 7
    assert cfg.trainer.min_epochs == 10
    cfg = compose("model=sasrec", "model.training.patience=4", fast=False)
    assert cfg.callbacks.early_stopping.patience == 4


def test_the_builder_never_sees_the_training_block(compose):
    cfg = compose("model=sasrec", fast=False)
    trimmed = model_build_config(cfg.model)
    assert "training" not in trimmed and "training" in cfg.model
    assert trimmed.lr == cfg.model.lr


@pytest.mark.parametrize(("override", "match"), [
    ("model.training.patiance=3", r"model\.training: unknown key 'patiance'.*'patience'"),
    ("model.training.patience=0", r"model\.training\.patience must be a positive integer"),
])
def test_bad_training_block_is_named(compose, override, match):
    cfg = compose("model=sasrec", f"+{override}" if "patiance" in override else override,
                  fast=False)
    with pytest.raises(ConfigError, match=match):
        model_build_config(cfg.model)


def _replay():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments" / "bench" / \
        "early_stopping_policies.py"
    spec = importlib.util.spec_from_file_location("early_stopping_policies", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.replay


def test_replayed_early_stopping_matches_a_hand_worked_curve():
    replay = _replay()
    # best at epoch 1, then 6 epochs without improvement, then a new best at epoch 8
    curve = [0.10, 0.20, 0.15, 0.15, 0.15, 0.15, 0.15, 0.15, 0.30, 0.29]
    assert replay(curve, patience=5, min_epochs=0) == (6, 1, False)  # stopped too early
    assert replay(curve, patience=5, min_epochs=10) == (9, 8, True)  # the minimum saves it
    assert replay(curve, patience=1, min_epochs=0) == (2, 1, False)


def test_auto_batch_size_keeps_positions_per_step():
    from recframe.api import resolve_batch_size

    assert resolve_batch_size({"batch_size": "auto"}, 50, 64)[0] == 64
    rows, choice = resolve_batch_size({"batch_size": "auto"}, 200, 64)
    assert rows == 16 and choice["batch_size"]["value"] == 16
    assert resolve_batch_size({"batch_size": "auto"}, 200, 16)[0] == 8  # the floor
    assert resolve_batch_size({"batch_size": 100}, 200, 64) == (100, {})
    with pytest.raises(ConfigError, match=r"model\.batch_size must be 'auto' or an integer"):
        resolve_batch_size({"batch_size": 0}, 50, 64)


def test_long_histories_get_smaller_batches_in_the_data_module(compose):
    from recframe.runner import build_experiment

    exp = build_experiment(compose(
        "model=sasrec", "split=leave_one_out", "dataset.n_users=40", "dataset.n_items=400",
        "dataset.mean_per_user=300", "dataset.min_per_user=280"))
    assert exp.model.max_seq_len == MAX_AUTO_LEN and exp.model.train_batch_size == 16
    assert exp.datamodule.batch_size == 16 and "batch_size" in exp.model.data_choices
