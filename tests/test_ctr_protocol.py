"""The CTR protocol end to end: labeled impressions, pointwise metrics, per-user values,
calibration, and clear errors; on an in-test click log with a planted logistic model."""

from __future__ import annotations

import json
import types

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score

from recframe.api import (
    CTRModel,
    DataError,
    Dataset,
    DatasetSpec,
    FieldLinear,
    ModelSpec,
    hookimpl,
)
from recframe.errors import ConfigError
from recframe.plugin import PluginManager
from recframe.runner import build_experiment, run_experiment


def planted_log(cfg, n=6000, n_users=150, n_items=60, seed=0, labels=None) -> Dataset:
    """Clicks from a logistic model: item effect + hour effect (known, learnable)."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    hours = rng.integers(0, 6, n)
    logit = np.linspace(-2, 2, n_items)[items] + np.array([-1, 0, 1, 0.5, -0.5, 0])[hours]
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    rows = pd.DataFrame({"user_id": users, "item_id": items, "label": label,
                         "timestamp": np.arange(n), "hour": hours})
    if labels is not None:
        rows["label"] = labels(rows["label"])
    kinds = pd.DataFrame({"kind": [f"k{i % 4}" for i in range(n_items)]},
                         index=pd.Index(range(n_items), name="item_id"))
    return Dataset(rows, items=kinds, name="planted", source="planted.csv",
                   meta={"fields": [{"name": "hour", "kind": "categorical"}]})


class ToyLR(CTRModel):
    """Logistic regression over every field (a stand-in for the zoo's ``lr``)."""

    def __init__(self, info):
        super().__init__(info)
        self.linear = FieldLinear(info.fields, init_std=0.01)

    def logits(self, fields):
        return self.linear(fields)


def _manager(labels=None, n_users: int = 150) -> PluginManager:
    @hookimpl
    def recframe_register_datasets(registry):
        registry.add(DatasetSpec(name="planted", load=lambda cfg: planted_log(
            cfg, n_users=n_users, labels=labels)))

    @hookimpl
    def recframe_register_models(registry):
        registry.add(ModelSpec(name="toy_lr", build=lambda info, cfg: ToyLR(info),
                               needs=frozenset({"fields"})))

    plugin = types.SimpleNamespace(recframe_register_datasets=recframe_register_datasets,
                                   recframe_register_models=recframe_register_models)
    plugin.__name__ = "planted_ctr_plugin"
    return PluginManager([plugin])


DATA = ["dataset=synthetic", "dataset.name=planted", "preprocess=none", "trainer.max_epochs=6",
        "logger=none", "split=temporal"]
CTR = [*DATA, "model=pop", "model.name=toy_lr", "++model.batch_size=256", "++model.lr=0.05"]


@pytest.fixture(scope="module")
def ctr_run(tmp_path_factory):
    from recframe.hydra_app import compose_config

    cfg = compose_config(CTR)
    run_dir = tmp_path_factory.mktemp("ctr")
    return run_experiment(cfg, run_dir, pm=_manager()), run_dir, cfg


def test_a_labeled_dataset_runs_the_ctr_protocol(ctr_run):
    results, run_dir, cfg = ctr_run
    assert results["status"] == "ok"
    assert results["protocol"]["kind"] == "ctr"
    assert results["protocol"]["monitor"] == "val/auc"
    test = results["metrics"]["test"]
    assert set(test) >= {"auc", "gauc", "logloss", "ece"}
    assert all("@" not in k for k in test)
    # the planted effects are learnable: well above chance, near the truth's log loss
    assert test["auc"] > 0.75
    assert test["logloss"] < 0.6
    assert {f["name"] for f in results["protocol"]["fields"]} >= {"user_id", "item_id", "hour",
                                                                 "kind"}
    counts = results["protocol"]["counts"]
    assert counts["n_test_impressions"] == 600 and 0 < counts["test_click_rate"] < 1
    assert cfg.metrics.monitor == "auc"  # the ranking defaults were replaced, and said so


def test_reported_metrics_match_sklearn_on_the_models_predictions(ctr_run, tmp_path):
    results, run_dir, cfg = ctr_run
    exp = build_experiment(cfg, _manager())
    ckpt = results["best_checkpoint"]
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    exp.task.load_state_dict(state)
    exp.model.prepare(exp.data)
    rows = exp.data.labeled["test"]
    batch = {"label": torch.from_numpy(rows.labels), "users": torch.from_numpy(rows.users),
             "items": torch.from_numpy(rows.items),
             "fields": {k: torch.from_numpy(v) for k, v in rows.fields.items()}}
    exp.model.eval()
    with torch.no_grad():
        p = torch.sigmoid(exp.model.predict(batch).double()).numpy()
    test = results["metrics"]["test"]
    assert test["auc"] == pytest.approx(roc_auc_score(rows.labels, p), abs=1e-9)
    assert test["logloss"] == pytest.approx(log_loss(rows.labels, p), abs=1e-6)
    # GAUC from per_user.parquet: impression-weighted mean over users with both classes
    frame = pd.read_parquet(run_dir / "per_user.parquet")
    both = frame["gauc"].notna()
    weighted = np.average(frame.loc[both, "gauc"], weights=frame.loc[both, "n_impressions"])
    assert test["gauc"] == pytest.approx(weighted, abs=1e-9)
    assert frame["n_impressions"].sum() == len(rows)


def test_calibration_table_is_written(ctr_run):
    results, run_dir, _ = ctr_run
    table = json.loads((run_dir / "calibration.json").read_text())["test"]
    assert len(table["count"]) == 15 and sum(table["count"]) == 600
    assert table["observed_rate"] == pytest.approx(
        results["calibration"]["observed_rate"])


def test_a_ranking_model_under_the_ctr_protocol_is_a_clear_error(tmp_path):
    from recframe.hydra_app import compose_config

    cfg = compose_config([*DATA, "model=bpr"])
    with pytest.raises(ConfigError, match="cannot predict the click probability"):
        run_experiment(cfg, tmp_path, pm=_manager())
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "failed"


def test_the_same_split_can_be_ranked(tmp_path):
    """protocol=ranking on labeled data: the clicked rows are the positives."""
    from recframe.hydra_app import compose_config

    cfg = compose_config([*DATA, "model=pop", "evaluation.protocol=ranking"])
    results = run_experiment(cfg, tmp_path, pm=_manager())
    assert results["protocol"]["kind"] == "ranking"
    assert "ndcg@10" in results["metrics"]["test"]


@pytest.mark.parametrize("labels, match", [
    (lambda y: y * 2, "must hold 0/1 click labels"),
    (lambda y: y * 0, "every row of column 'label' is 0"),
])
def test_bad_labels_name_the_column_and_the_fix(tmp_path, labels, match):
    from recframe.hydra_app import compose_config

    cfg = compose_config(CTR)
    with pytest.raises(DataError, match=match):
        run_experiment(cfg, tmp_path, pm=_manager(labels))
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "failed"


def test_ctr_protocol_on_unlabeled_data_is_a_clear_error(tmp_path):
    from recframe.hydra_app import compose_config
    from tests.conftest import FAST

    cfg = compose_config([*FAST, "model=pop", "evaluation=ctr", "metrics=ctr"])
    with pytest.raises(ConfigError, match="has no `label` column"):
        run_experiment(cfg, tmp_path)


def test_pointwise_only_metrics_are_rejected_when_ranking(tmp_path):
    from recframe.hydra_app import compose_config
    from tests.conftest import FAST

    cfg = compose_config([*FAST, "model=pop", "metrics.names=[ndcg,gauc]"])
    with pytest.raises(ConfigError, match="exist only under the CTR protocol"):
        run_experiment(cfg, tmp_path)


def test_users_without_train_rows_are_scored_and_kept(tmp_path):
    """Rows split as one pool: some test users have no train row. Their impressions are
    still scored (their user_id field is out of vocabulary) and they appear in the
    per-user values under an id of their own."""
    from recframe.hydra_app import compose_config

    cfg = compose_config([*CTR, "split=random", "split.per_user=false",
                          "trainer.max_epochs=1"])
    results = run_experiment(cfg, tmp_path, pm=_manager(n_users=4000))
    frame = pd.read_parquet(tmp_path / "per_user.parquet")
    unseen = frame["user_id"].str.startswith("unseen-")
    assert unseen.any() and frame["user_id"].is_unique
    assert frame["n_impressions"].sum() == results["protocol"]["counts"]["n_test_impressions"]
