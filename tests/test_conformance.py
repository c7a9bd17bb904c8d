"""Every built-in plugin passes the conformance kit (`recframe.testing`), and the kit
catches broken components."""

from __future__ import annotations

import logging
import os
import types

import numpy as np
import pandas as pd
import pytest
import torch

from recframe.api import (
    ITEM,
    USER,
    Dataset,
    DatasetSpec,
    MetricSpec,
    ModelSpec,
    PreprocessorSpec,
    RecModel,
    TrainFormat,
    hookimpl,
)
from recframe.plugin import PluginManager, default_manager
from recframe.testing import (
    check_dataset,
    check_metric,
    check_model,
    check_preprocessor,
    check_splitter,
    compose,
    plugin_manager,
    sample_dataset,
)

from .conftest import ML100K

PM = default_manager()

# Shrink the slow models so the whole file stays fast; everything else runs with its
# shipped defaults. One epoch for all (`check_model` trains twice for determinism).
MODEL_OVERRIDES: dict[str, list[str]] = {
    "bpr": ["model.embedding_dim=16"],
    "sasrec": ["model.max_seq_len=16", "model.embedding_dim=16", "model.ffn_dim=32",
               "model.num_blocks=1", "model.num_heads=1", "model.loss=ce"],
    "bert4rec": ["model.max_seq_len=16", "model.embedding_dim=16", "model.ffn_dim=32",
                 "model.num_blocks=1", "model.num_heads=1"],
    "gru4rec": ["model.max_seq_len=16", "model.embedding_dim=16", "model.hidden_size=16"],
    "neumf": ["model.gmf_dim=8", "model.mlp_dim=8", "model.hidden=[16,8]",
              "model.num_negatives=1", "model.batch_size=1024"],
    "mlp_ctr": ["model.embedding_dim=8", "model.hidden=[16]", "model.num_negatives=1",
                "model.batch_size=1024"],
    "lr": ["model.batch_size=512"],
    "fm": ["model.embedding_dim=8", "model.batch_size=512"],
    "deepfm": ["model.embedding_dim=8", "model.hidden=[16]", "model.batch_size=512"],
    "dcnv2": ["model.embedding_dim=8", "model.hidden=[16]", "model.cross_layers=2",
              "model.batch_size=512"],
    "autoint": ["model.embedding_dim=8", "model.attention_dim=8", "model.attention_layers=1",
                "model.batch_size=512"],
    "lightfm_style": ["model.embedding_dim=8"],
    # the paper's 128 negatives exceed the 50-item catalogue (E852)
    "hstu": ["model.embedding_dim=16", "model.loss.num_negatives=16"],
    "tiger": ["model.embedding_dim=16", "model.encoder_layers=1", "model.decoder_layers=1",
              "model.ffn_dim=32", "model.semantic_ids.epochs=2",
              "model.semantic_ids.codebook_size=16", "model.semantic_ids.hidden=[16]"],
    "din": ["model.embedding_dim=8", "model.hidden=[16]", "model.attention_hidden=[8]",
            "model.batch_size=512",
            "dataset.fields=[{name: hist, kind: sequence, shares: item_id, max_len: 5}]"],
    "ials": ["model.factors=8", "model.iterations=2"],
    "lightgcn": ["model.embedding_dim=16", "model.layers=2"],
    "multvae": ["model.hidden_dim=32", "model.latent_dim=8", "model.batch_size=32"],
    "ensemble": ["model.components.1.epochs=1", "model.components.1.embedding_dim=8"],
}
SLOW_MODELS: set[str] = set()
# Models the synthetic data cannot serve (din runs with a declared `hist` sequence field).
ELSEWHERE: set[str] = set()
# Metrics whose values are not in [0, 1] (counts, self-information, log loss).
UNBOUNDED_METRICS = {"novelty", "avg_popularity", "logloss", "calibration_gap"}
# One `preprocess` entry per built-in step, with parameters that make it drop rows.
PREPROCESS_CONFIGS: dict[str, dict] = {
    "binarize": {"threshold": 4.0},
    "kcore": {"user_min": 5, "item_min": 5},
    "normalize": {"columns": ["year", "genre_0"], "method": "zscore", "target": "items"},
}


def _params(names, slow=()):
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in names]


# -- every built-in component passes ----------------------------------------------------


@pytest.mark.parametrize("name", _params(
    [n for n in PM.models.names() if n not in ELSEWHERE], SLOW_MODELS))
def test_builtin_model_conforms(name):
    report = check_model(name, overrides=["trainer.max_epochs=1",
                                          *MODEL_OVERRIDES.get(name, [])])
    assert report.checked[-1] == "sampled"


@pytest.mark.parametrize("name", PM.metrics.names())
def test_builtin_metric_conforms(name):
    check_metric(name, bounded=name not in UNBOUNDED_METRICS)


@pytest.mark.parametrize("name", PM.preprocessors.names())
def test_builtin_preprocessor_conforms(name, monkeypatch):
    monkeypatch.setenv("RECFRAME_ANON_KEY", "conformance-test-key")  # for `anonymize`
    check_preprocessor(name, PREPROCESS_CONFIGS.get(name), rewrites_ids=name == "anonymize")


@pytest.mark.parametrize("name", PM.splitters.names())
def test_builtin_splitter_conforms(name):
    check_splitter(name, compose(f"split={name}").split)


def test_synthetic_dataset_conforms():
    ds = check_dataset("synthetic", compose("dataset=synthetic", "dataset.n_users=50").dataset)
    assert ds.items is not None and ds.users is not None


def test_synthetic_long_dataset_conforms():
    ds = check_dataset("synthetic_long", compose(
        "dataset=synthetic_long", "dataset.n_users=30", "dataset.n_items=200",
        "dataset.min_per_user=20", "dataset.mean_per_user=40", "dataset.max_per_user=60").dataset)
    assert ds.has_timestamps and ds.name == "synthetic_long"


def test_seq_txt_dataset_conforms(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("".join(f"{u} {i}\n" for u in range(1, 6) for i in range(1, 8)))
    ds = check_dataset("seq_txt", compose("dataset=seq_txt", f"dataset.path={path}").dataset)
    assert ds.has_timestamps and not ds.has_ratings


def test_amazon_games_dataset_conforms():
    cfg = compose("dataset=amazon-games").dataset
    data_dir = os.environ.get("RECFRAME_DATA_DIR")
    if not data_dir or not os.path.exists(os.path.join(data_dir, "amazon-games", "Video.txt")):
        pytest.skip("amazon-games/Video.txt not found under $RECFRAME_DATA_DIR")
    assert len(check_dataset("amazon-games", cfg)) == 287_107


def test_csv_dataset_conforms(tmp_path):
    frame = sample_dataset(messy=False).interactions
    path = tmp_path / "ratings.csv"
    frame.to_csv(path, index=False)
    ds = check_dataset("csv", compose("dataset=csv", f"dataset.path={path}").dataset)
    assert len(ds) == len(frame)


@pytest.mark.slow
def test_ml100k_dataset_conforms():
    if not (ML100K / "u.data").exists():
        pytest.skip(f"MovieLens-100K not found at {ML100K}")
    cfg = compose("dataset=ml-100k", f"dataset.path={ML100K}", "dataset.download=false")
    assert len(check_dataset("ml-100k", cfg.dataset)) == 100_000


def test_synthetic_ctr_dataset_conforms():
    ds = check_dataset("synthetic_ctr", compose("dataset=synthetic_ctr",
                                                "dataset.n_rows=3000").dataset)
    assert set(ds.interactions["label"].unique()) == {0, 1}


@pytest.mark.parametrize("name", ["criteo", "avazu"])
def test_click_log_presets_conform(name):
    cfg = compose(f"dataset={name}").dataset
    if not os.path.exists(str(cfg.path)):
        pytest.skip(f"the {name} sample is not at {cfg.path}")
    ds = check_dataset(name, cfg)
    assert "label" in ds.interactions.columns


@pytest.mark.slow
def test_ml100k_ctr_dataset_conforms():
    if not (ML100K / "u.data").exists():
        pytest.skip(f"MovieLens-100K not found at {ML100K}")
    cfg = compose("dataset=ml-100k-ctr", f"dataset.path={ML100K}", "dataset.download=false")
    assert len(check_dataset("ml-100k-ctr", cfg.dataset)) == 100_000


def test_every_registered_name_is_covered():
    """A new built-in dataset needs a conformance test here (`ctr_log` is the loader
    behind the criteo and avazu presets); the other kinds are parametrized."""
    assert set(PM.datasets.names()) <= {"synthetic", "csv", "ml-100k", "synthetic_ctr",
                                        "criteo", "avazu", "ctr_log", "ml-100k-ctr",
                                        "seq_txt", "amazon-games", "synthetic_long"}


# -- the kit catches broken components ---------------------------------------------------


def _plugin(**hooks) -> types.SimpleNamespace:
    plugin = types.SimpleNamespace(**{k: hookimpl(v) for k, v in hooks.items()})
    plugin.__name__ = "broken_toys"
    return plugin


def _metric_fails(fn, match, **kwargs):
    with pytest.raises(AssertionError, match=match):
        check_metric(MetricSpec(name="toy_metric", fn=fn, **kwargs))


def test_check_metric_catches_nan_for_users_without_relevant_items():
    _metric_fails(lambda inp, k: inp.hits[:, :k].sum(1) / inp.n_relevant, "not finite")


def test_check_metric_catches_batch_size_dependence():
    def centred(inp, k):
        hits = inp.hits[:, :k].sum(1) / k
        return (hits - hits.mean()).abs()

    _metric_fails(centred, "batch size")


def test_check_metric_catches_wrong_shape_and_range():
    _metric_fails(lambda inp, k: inp.hits[:, :k], "shape")
    _metric_fails(lambda inp, k: inp.hits[:, :k].sum(1), r"outside \[0, 1\]")


def test_check_metric_checks_global_metrics():
    def per_user_share(g, k):  # NaN when no user was evaluated
        return (g.counts > 0).double().mean() * (torch.tensor(float(g.n_users)) / g.n_users)

    _metric_fails(per_user_share, "not finite", kind="global")
    check_metric(MetricSpec(name="toy_cov", fn=lambda g, k: (g.counts > 0).double().mean(),
                            kind="global"))


def _pre(fn):
    return PreprocessorSpec(name="toy_step", build=lambda cfg: fn)


def test_check_preprocessor_catches_impure_and_reindexed_and_silent_steps():
    def mutates(ds):
        ds.interactions.loc[ds.interactions.index[0], "rating"] = 99.0
        return ds

    with pytest.raises(AssertionError, match="pure"):
        check_preprocessor(_pre(mutates))
    with pytest.raises(AssertionError, match="index labels"):
        check_preprocessor(_pre(lambda ds: ds.with_interactions(
            ds.interactions.iloc[2:].reset_index(drop=True))))
    with pytest.raises(AssertionError, match="logged no message"):
        check_preprocessor(_pre(lambda ds: ds.with_interactions(ds.interactions.iloc[3:])))

    def logs(ds):
        logging.getLogger("toy").info("toy_step: dropped %d rows", 3)
        return ds.with_interactions(ds.interactions.iloc[3:])

    check_preprocessor(_pre(logs))


def test_check_dataset_catches_null_ids_and_unindexed_features():
    frame = pd.DataFrame({USER: [1, None], ITEM: [1, 2]})
    with pytest.raises(AssertionError, match="null"):
        check_dataset(DatasetSpec(name="toy_ds", load=lambda cfg: Dataset(frame)), {})
    items = pd.DataFrame({ITEM: [1, 2], "x": [0.0, 1.0]})  # id as a column, not the index
    good = pd.DataFrame({USER: [1, 2], ITEM: [1, 2]})
    with pytest.raises(AssertionError, match="indexed by 'item_id'"):
        check_dataset(DatasetSpec(name="toy_ds", load=lambda cfg: Dataset(good, items=items)),
                      {})


def test_check_splitter_catches_overlapping_parts():
    from recframe.api import Split, SplitterSpec

    def leaky(cfg):
        return lambda ds: Split(ds, ds, ds)

    with pytest.raises(AssertionError, match="overlap"):
        check_splitter(SplitterSpec(name="toy_split", build=leaky), {})


class ForgetfulPop(RecModel):
    """Fits popularity into a plain attribute: lost on a checkpoint round trip."""

    train_format = TrainFormat.FIT

    def __init__(self, n_items: int) -> None:
        super().__init__()
        self.n_items = n_items
        self.register_buffer("unused", torch.zeros(1))
        self.pop = torch.zeros(n_items)

    def fit(self, data) -> None:
        self.pop = torch.from_numpy(data.item_popularity().astype(np.float32))

    def score(self, users, context):
        return self.pop.expand(len(users), -1).clone()


def test_check_model_catches_state_missing_from_the_checkpoint(tmp_path):
    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "forgetful.yaml").write_text("name: forgetful\n")
    plugin = _plugin(
        recframe_register_models=lambda registry: registry.add(ModelSpec(
            name="forgetful", build=lambda info, cfg: ForgetfulPop(info.n_items))),
        recframe_config_searchpath=lambda: f"file://{tmp_path / 'conf'}",
    )
    pm = PluginManager([plugin])
    with pytest.raises(AssertionError, match="not in the checkpoint"):
        check_model("forgetful", pm=pm, evaluation_modes=("full",))


class WrongFormat(ForgetfulPop):
    def __init__(self, n_items: int) -> None:
        super().__init__(n_items)
        self.train_format = "batches_of_rows"  # not a TrainFormat (set on the instance)


def test_check_model_rejects_an_unknown_train_format(tmp_path):
    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "wrong_format.yaml").write_text("name: wrong_format\n")
    plugin = _plugin(
        recframe_register_models=lambda registry: registry.add(ModelSpec(
            name="wrong_format", build=lambda info, cfg: WrongFormat(info.n_items))),
        recframe_config_searchpath=lambda: f"file://{tmp_path / 'conf'}",
    )
    with pytest.raises(AssertionError, match="declares train_format='batches_of_rows', which "
                                             "is not a train format"):
        check_model("wrong_format", pm=PluginManager([plugin]), evaluation_modes=("full",))


def test_a_model_class_with_an_unknown_train_format_fails_when_defined():
    from recframe.api import RecModel, TrainFormat, UnknownTrainFormat

    with pytest.raises(UnknownTrainFormat, match="model class .*Rows declares "
                                                 "train_format='rows'"):
        class Rows(RecModel):
            train_format = "rows"

    class Matrix(RecModel):  # a format's string value is accepted as the member
        train_format = "matrix"

    assert Matrix.train_format is TrainFormat.MATRIX


def test_check_model_requires_a_config_file():
    pm = PluginManager([_plugin(recframe_register_models=lambda registry: registry.add(
        ModelSpec(name="no_yaml", build=lambda info, cfg: ForgetfulPop(info.n_items))))])
    with pytest.raises(AssertionError, match="no config file"):
        check_model("no_yaml", pm=pm)


def test_plugin_manager_reuses_the_default_when_installed():
    import recframe_cf.plugin as installed

    assert plugin_manager(installed) is default_manager()
    extra = _plugin(recframe_register_metrics=lambda registry: registry.add(
        MetricSpec(name="toy_only_here", fn=lambda inp, k: inp.hits[:, :k].amax(1))))
    pm = plugin_manager(installed, extra)
    assert pm is not default_manager() and "toy_only_here" in pm.metrics
    check_metric("toy_only_here", pm=pm)


# -- click models under the CTR protocol --------------------------------------------------

CLICK_MODELS = ["lr", "fm", "deepfm", "dcnv2", "autoint", "din", "mlp_ctr"]
CLICK_OVERRIDES = {
    "deepfm": ["model.hidden=[16]"], "dcnv2": ["model.hidden=[16]", "model.cross_layers=1"],
    "autoint": ["model.attention_dim=8", "model.attention_layers=1"],
    "din": ["model.hidden=[16]", "model.attention_hidden=[8]"], "mlp_ctr": ["model.hidden=[16]"],
}


@pytest.mark.parametrize("name", [n for n in CLICK_MODELS if n in PM.models])
def test_builtin_click_model_conforms(name):
    from recframe.testing import check_click_model

    report = check_click_model(name, overrides=["model.embedding_dim=8", "model.batch_size=256",
                                                *CLICK_OVERRIDES.get(name, [])]
                               if name != "lr" else ["model.batch_size=256"])
    assert report.checked[-1] == "deterministic"
    assert 0 <= report.results["metrics"]["test"]["auc"] <= 1  # mechanics, not quality


def test_check_click_model_catches_batch_dependent_logits(tmp_path):
    from recframe.api import CTRModel, FieldLinear
    from recframe.testing import check_click_model

    class BatchNormalized(CTRModel):
        """Logits centred on the batch mean: a row's score depends on its batch."""

        def __init__(self, info):
            super().__init__(info)
            self.linear = FieldLinear(info.fields, init_std=0.01)

        def logits(self, fields):
            z = self.linear(fields)
            return z - z.mean() if not self.training else z

    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "batch_normalized.yaml").write_text("name: batch_normalized\nbatch_size: 256\n"
                                                "lr: 0.01\n")
    plugin = _plugin(
        recframe_register_models=lambda registry: registry.add(ModelSpec(
            name="batch_normalized", build=lambda info, cfg: BatchNormalized(info),
            needs=frozenset({"fields"}))),
        recframe_config_searchpath=lambda: f"file://{tmp_path / 'conf'}",
    )
    pm = PluginManager([plugin])
    with pytest.raises(AssertionError, match="depends on the batch"):
        check_click_model("batch_normalized", pm=pm)
