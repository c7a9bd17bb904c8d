"""Every entry of docs/errors.md is triggered here, and its catalogued text is in the message.

Each entry of the catalogue has an id (``E101``, ``W201``, ...) and a line
``- **Key text:** "fragment", "fragment"``. ``TRIGGERS`` maps each id to a function
that provokes that error (or warning) the way a user would and returns its
message; the test asserts that every fragment is in it. A meta-test checks that
the ids in the document and here are the same, so the catalogue cannot drift.
"""

from __future__ import annotations

import logging
import os
import re
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from recframe.api import Dataset, DatasetSpec, ModelSpec, RecModel, Split, TrainFormat, hookimpl
from recframe.errors import RecframeError

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
GOOD_ROWS = "".join(f"{u},{i},4,{u * 100 + i}\n" for u in range(1, 6) for i in range(1, 8))


@dataclass
class Ctx:
    tmp: Path
    compose: Callable
    monkeypatch: pytest.MonkeyPatch
    caplog: pytest.LogCaptureFixture
    capsys: pytest.CaptureFixture


def message(fn: Callable[[], object], error: type[BaseException] = RecframeError) -> str:
    """Call ``fn``; it must raise ``error``; return the message."""
    with pytest.raises(error) as info:
        fn()
    return str(info.value)


def cfg(**kw):
    return OmegaConf.create(kw)


def write(ctx: Ctx, text: str | bytes, name: str = "ratings.csv") -> Path:
    path = ctx.tmp / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def load_csv(path: Path, **kw):
    from recframe_datasets.csv_loader import load_csv as load

    return load(cfg(name="csv", path=str(path), **kw))


def csv_error(ctx: Ctx, text: str | bytes, name: str = "ratings.csv", **kw) -> str:
    path = write(ctx, text, name)
    return message(lambda: load_csv(path, **kw))


def run_error(ctx: Ctx, *overrides: str, pm=None, error: type = RecframeError,
              setup: Callable | None = None, fast: bool = True) -> str:
    from recframe.runner import run_experiment

    conf = ctx.compose(*overrides, fast=fast)
    if setup is not None:
        setup(conf)
    return message(lambda: run_experiment(conf, ctx.tmp / "run", pm=pm), error)


def resolve_error(ctx: Ctx, *overrides: str, setup: Callable | None = None) -> str:
    from recframe.pipeline import resolve
    from recframe.plugin.manager import default_manager

    conf = ctx.compose(*overrides)
    if setup is not None:
        setup(conf)
    return message(lambda: resolve(conf, default_manager()))


def frame(rows, columns=("user_id", "item_id", "rating", "timestamp")) -> Dataset:
    return Dataset(pd.DataFrame(rows, columns=list(columns)), name="toy")


def encoded(with_timestamps: bool = True, item_features: bool = False):
    from recframe.data.encode import encode

    rows = [[u, i, 1.0, u * 10 + i] for u in range(3) for i in range(4)]
    ds = frame(rows)
    if not with_timestamps:
        ds = ds.with_interactions(ds.interactions.drop(columns="timestamp"))
    if item_features:
        ds = Dataset(ds.interactions, items=pd.DataFrame(
            {"genre_a": [1.0, 0.0, 1.0, 0.0]}, index=pd.Index(range(4), name="item_id")))
    empty = ds.with_interactions(ds.interactions.iloc[:0])
    return encode(Split(ds, empty, empty))


def toy_plugin(name: str, **hooks):
    plugin = types.SimpleNamespace(**{k: hookimpl(v) for k, v in hooks.items()})
    plugin.__name__ = name
    return plugin


class NaNScores(RecModel):
    """A closed-form model whose scores are NaN."""

    train_format = TrainFormat.FIT

    def __init__(self, n_items: int):
        super().__init__()
        self.n_items = n_items
        self.register_buffer("dummy", torch.zeros(1))

    def fit(self, data):
        pass

    def score(self, users, context):
        return torch.full((len(users), self.n_items), float("nan"))


def model_plugin(name: str, build: Callable):
    """The installed plugins plus one in-test model."""
    from recframe.plugin import PluginManager

    pm = PluginManager()
    pm.models.add(ModelSpec(name=name, build=build), plugin="test")
    return pm


# --------------------------------------------------------------------------- triggers
# data files ---------------------------------------------------------------------------


def e101(ctx):
    return message(lambda: load_csv(ctx.tmp / "nope.csv"))


def e102(ctx):
    from recframe_datasets.plugin import load_ml100k

    ctx.monkeypatch.delenv("RECFRAME_DATA_DIR", raising=False)
    return message(lambda: load_ml100k(cfg(name="ml-100k", path=str(ctx.tmp / "nowhere"),
                                           download=False)))


def e103(ctx):
    return csv_error(ctx, "user_id,item_id,rating,timestamp\n1,2,4,10\n1,3,4,11,99\n")


def e104(ctx):
    return csv_error(ctx, "user_id;item_id;rating;timestamp\n1;2;3;4\n")


def e105(ctx):
    return csv_error(ctx, "user_id,item_id,item_id\n1,2,3\n")


def e106(ctx):
    return csv_error(ctx, "userid,item_id,rating,timestamp\n" + GOOD_ROWS)


def e107(ctx):
    return csv_error(ctx, b"user_id,item_id\n\xff,2\n", columns={"rating": None,
                                                                   "timestamp": None})


def e108(ctx):
    return csv_error(ctx, "")


def e109(ctx):
    return csv_error(ctx, "\nuser_id,item_id\n1,2\n")


def e110(ctx):
    return csv_error(ctx, "user_id,item_id\n1,2\n", name="ratings.parquet")


def e111(ctx):
    return csv_error(ctx, 'user_id,item_id\n"5,2\n6,7\n', columns={"rating": None,
                                                                    "timestamp": None})


def e112(ctx):
    return csv_error(ctx, "user_id::item_id\n1::2\n", sep="((")


def e113(ctx):
    return csv_error(ctx, "user_id,item_id\n1,2\n", encoding="utf-9")


# data content -------------------------------------------------------------------------


def e201(ctx):
    return csv_error(ctx, "user_id,item_id\n1,2\n\n,3\n",
                     columns={"rating": None, "timestamp": None})


def e202(ctx):
    return csv_error(ctx, "user_id,item_id,rating,timestamp\n1,2,3,4\n1,3,x,5\n")


def e203(ctx):
    path = ctx.tmp / "ratings.parquet"
    pd.DataFrame({"user_id": [1.0, 2.5], "item_id": [1, 2]}).to_parquet(path)
    return message(lambda: load_csv(path, columns={"rating": None, "timestamp": None}))


def e204(ctx):
    write(ctx, "movie,title\nm1,Spy\n", name="items.csv")
    return csv_error(ctx, "user_id,item_id\n1,2\n", columns={"rating": None, "timestamp": None},
                     item_features={"path": "items.csv", "key": "movie"})


def e205(ctx):
    write(ctx, "item_id,title\n2,Spy\n2,Heat\n", name="items.csv")
    return csv_error(ctx, "user_id,item_id\n1,2\n", columns={"rating": None, "timestamp": None},
                     item_features={"path": "items.csv"})


def e206(ctx):
    from recframe.pipeline import validate_interactions

    ds = frame([[1, 2, 4.0, 10], [1, 3, float("inf"), 11]])
    ds = Dataset(ds.interactions, name="ratings", source="/data/ratings.csv")
    return message(lambda: validate_interactions(ds, "after loading"))


def e207(ctx):
    from recframe_preprocess.kcore import build_kcore

    step = build_kcore(cfg(name="kcore", user_min=100, item_min=5))
    return message(lambda: step(frame([[1, 2, 4.0, 10], [1, 3, 5.0, 11]])))


def e208(ctx):
    from recframe.pipeline import validate_interactions

    path = write(ctx, "user_id,item_id\n")
    ds = load_csv(path, columns={"rating": None, "timestamp": None})
    return message(lambda: validate_interactions(ds, "after loading"))


def e209(ctx):
    from recframe_preprocess.binarize import build_binarize

    step = build_binarize(cfg(name="binarize"))
    return message(lambda: step(frame([[1, 2, "good", 1]])))


def e210(ctx):
    from recframe_splitters.temporal import build_temporal

    split = build_temporal(cfg(name="temporal"))
    return message(lambda: split(frame([[1, 2, 4.0]], columns=("user_id", "item_id",
                                                                "rating"))))


def e211(ctx):
    from recframe_splitters.leave_one_out import build_leave_one_out

    split = build_leave_one_out(cfg(name="leave_one_out"))
    return message(lambda: split(frame([[1, 2, 4.0, None], [1, 3, 4.0, 5]])))


def e212(ctx):
    from recframe_splitters.temporal import build_temporal

    split = build_temporal(cfg(name="temporal"))
    return message(lambda: split(frame([[u, i, 1.0, 7] for u in range(3) for i in range(3)])))


def e213(ctx):
    return run_error(ctx, "model=pop", "split.ratios=[1.0,0.0,0.0]")


def e214(ctx):
    from recframe.data.encode import encode

    ds = frame([[1, 2, 4.0, 10]])
    empty = ds.with_interactions(ds.interactions.iloc[:0])
    return message(lambda: encode(Split(empty, ds, ds)))


def w201(ctx):
    from recframe.data.encode import encode

    train = frame([[1, 2, 4.0, 10], [1, 3, 4.0, 11]])
    test = frame([[1, 4, 4.0, 12], [9, 2, 4.0, 13]])
    empty = train.with_interactions(train.interactions.iloc[:0])
    with ctx.caplog.at_level(logging.WARNING, logger="recframe.data.encode"):
        data = encode(Split(train, empty, test))
    assert data.meta["dropped_eval_interactions_without_train_user"]["test"] == 1
    return ctx.caplog.text


def w202(ctx):
    from recframe_splitters.random_split import build_random

    split = build_random(cfg(name="random"))
    with ctx.caplog.at_level(logging.WARNING, logger="recframe_splitters"):
        split(frame([[1, 2, 4.0, 10], [2, 3, 4.0, 11]]))
    return ctx.caplog.text


# configuration ------------------------------------------------------------------------


def e301(ctx):
    from recframe_datasets.plugin import load_csv as load

    return message(lambda: load(OmegaConf.create({"name": "csv", "path": "???"})))


def e302(ctx):
    path = write(ctx, "user_id,item_id\n1,2\n")
    return message(lambda: load_csv(path, sepp=";"))


def e303(ctx):
    from recframe_preprocess.binarize import build_binarize

    return message(lambda: build_binarize(cfg(name="binarize", treshold=4)))


def e304(ctx):
    return run_error(ctx, "model.embedding_dim=big")


def e305(ctx):
    return run_error(ctx, "model.reg=-1")


def e306(ctx):
    from recframe_splitters.random_split import build_random

    return message(lambda: build_random(cfg(name="random", ratios=[0.8, 0.2])))


def e307(ctx):
    return resolve_error(ctx, "metrics.ks=[0]")


def e308(ctx):
    return resolve_error(ctx, "metrics.monitor=ndcg@5")


def e309(ctx):
    from recframe.eval.protocol import candidate_policy

    return message(lambda: candidate_policy(cfg(candidates="sample")))


def e310(ctx):
    def setup(conf):
        conf.preprocess = "dedup"

    return resolve_error(ctx, setup=setup)


def e311(ctx):
    ctx.monkeypatch.delenv("RECFRAME_ANON_KEY", raising=False)
    return resolve_error(ctx, "preprocess=implicit_anonymized")


def e312(ctx):
    ctx.monkeypatch.setenv("RECFRAME_ANON_KEY", "k")
    return resolve_error(ctx, "preprocess=implicit_anonymized", "+preprocess.2.key=abc")


def e313(ctx):
    def setup(conf):
        conf.logger = {"broken": {"_target_": "no_such_module.Logger"}}

    return run_error(ctx, "model=pop", setup=setup)


# plugins ------------------------------------------------------------------------------


def e401(ctx):
    return resolve_error(ctx, "model.name=bprr")


def e402(ctx):
    return resolve_error(ctx, "metrics.names=[ndcg,recal]")


def e403(ctx):
    from recframe.plugin import PluginManager

    def register(registry):
        registry.add(ModelSpec(name="twin", build=lambda info, c: None))

    plugins = [toy_plugin(n, recframe_register_models=register) for n in ("one", "two")]
    return message(lambda: PluginManager(plugins, load_entry_points=False))


def e404(ctx):
    from recframe.plugin import PluginManager

    def register(registry):
        raise RuntimeError("no GPU library found")

    plugin = toy_plugin("broken_models", recframe_register_models=register)
    return message(lambda: PluginManager([plugin], load_entry_points=False))


def e405(ctx):
    import importlib.metadata

    from recframe.plugin import PluginManager

    def load():
        raise ImportError("No module named 'torch_sparse'")

    ep = types.SimpleNamespace(group="recframe", name="graphs", value="recframe_graphs.plugin",
                               load=load)
    dist = types.SimpleNamespace(entry_points=[ep], metadata={"name": "recframe-graphs"},
                                 version="0.3.0")
    ctx.monkeypatch.setattr(importlib.metadata, "distributions", lambda: [dist])
    return message(lambda: PluginManager())


# models and data ----------------------------------------------------------------------


def _spec(ctx, name: str, need: str) -> ModelSpec:
    from recframe.plugin.manager import default_manager

    models = default_manager().models
    if name in models:
        spec = models.get(name)
        if need in spec.needs:
            return spec
    return ModelSpec(name=name, build=lambda info, c: None, needs=frozenset({need}))


def e501(ctx):
    from recframe.pipeline import check_compatible

    spec = _spec(ctx, "sasrec", "timestamps")
    return message(lambda: check_compatible(spec, encoded(with_timestamps=False)))


def e502(ctx):
    from recframe.pipeline import check_compatible

    spec = _spec(ctx, "content", "item_features")
    return message(lambda: check_compatible(spec, encoded()))


def e503(ctx):
    from recframe.pipeline import check_compatible

    spec = ModelSpec(name="user_tower", build=lambda info, c: None,
                     needs=frozenset({"user_features"}))
    return message(lambda: check_compatible(spec, encoded(item_features=True)))


def e504(ctx):
    return run_error(ctx, "model=pop", "dataset.n_genres=0", "metrics.names=[ndcg,ild]")


# runs ---------------------------------------------------------------------------------


def e601(ctx):
    from recframe.hydra_app import resume_overrides

    return message(lambda: resume_overrides([f"resume={ctx.tmp}"]))


def e602(ctx):
    from recframe.runner import resume_checkpoint

    return message(lambda: resume_checkpoint(cfg(resume=str(ctx.tmp / "run")), ctx.tmp))


def e603(ctx):
    from recframe.hydra_app import resume_overrides

    run_dir = ctx.tmp / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text("- model=bpr\n")
    return message(lambda: resume_overrides([f"resume={run_dir}", "-m", "seed=0,1"]))


def e604(ctx):
    from recframe_cf.bpr import BPRMF

    class Diverging(BPRMF):
        def loss(self, batch):
            return super().loss(batch) * torch.nan

    pm = model_plugin("diverging", lambda info, c: Diverging(info.n_users, info.n_items, 8))
    return run_error(ctx, "model=bpr", "model.name=diverging", pm=pm)


def e605(ctx):
    pm = model_plugin("nan_scores", lambda info, c: NaNScores(info.n_items))
    return run_error(ctx, "model=pop", "model.name=nan_scores", pm=pm)


def e606(ctx):
    from recframe.cli import main

    assert main(["rnu"]) == 2
    return ctx.capsys.readouterr().err


def w601(ctx):
    from recframe.eval.protocol import candidate_policy, candidate_sampler

    record = candidate_policy(cfg(candidates="sampled", num_negatives=10))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        candidate_sampler(record, n_items=50)
    return "\n".join(str(w.message) for w in caught)


# click logs and fields ----------------------------------------------------------------


def _click_log(labels=(0, 1, 1, 0, 1, 0), **meta) -> Dataset:
    n = len(labels)
    rows = pd.DataFrame({"user_id": [u % 3 for u in range(n)], "item_id": list(range(n)),
                         "label": list(labels), "timestamp": list(range(n))})
    items = pd.DataFrame({"genres": ["a|b", "b"] * (n // 2)},
                         index=pd.Index(range(n), name="item_id"))
    return Dataset(rows, items=items, name="clicks", source="/data/clicks.csv", meta=meta)


def _encode_fields(ds: Dataset, fields=None):
    from recframe.data.encode import encode

    return encode(Split(ds, ds, ds), fields=fields, with_fields=True)


def e701(ctx):
    from recframe.pipeline import validate_interactions

    return message(lambda: validate_interactions(_click_log((0, 1, 2, 1, 0, 1)), "after loading"))


def e702(ctx):
    from recframe.pipeline import validate_interactions

    return message(lambda: validate_interactions(_click_log((1,) * 6), "after loading"))


def e703(ctx):
    return message(lambda: _encode_fields(_click_log(), {"genres": {"kind": "multi"}}))


def e704(ctx):
    return message(lambda: _encode_fields(_click_log(), {"genres": {
        "kind": "multi_categorical"}}))


def e705(ctx):
    ds = _click_log()
    ds = ds.with_interactions(ds.interactions.drop(columns="timestamp"))
    return message(lambda: _encode_fields(ds, {"hist": {"kind": "sequence"}}))


def e706(ctx):
    return message(lambda: _encode_fields(_click_log(), {"colour": {"kind": "categorical"}}))


def e707(ctx):
    ds = _click_log()
    items = ds.items.assign(price=["cheap"] + ["1.5"] * (len(ds.items) - 1))
    ds = Dataset(ds.interactions, items=items, name="clicks", source="/data/clicks.csv")
    return message(lambda: _encode_fields(ds, {"price": {"kind": "numeric"}}))


def e708(ctx):
    return run_error(ctx, "model=bpr", "dataset=synthetic_ctr", "dataset.n_rows=3000",
                     "logger=none", fast=False)


def e709(ctx):
    return run_error(ctx, "model=pop", "evaluation=ctr", "metrics=ctr")


def e710(ctx):
    return run_error(ctx, "model=pop", "metrics.names=[ndcg,gauc]")


def e711(ctx):
    return resolve_error(ctx, "evaluation=ctr", "metrics=ctr", "metrics.monitor=logloss")


def e712(ctx):
    return run_error(ctx, "model=din", "dataset=synthetic_ctr", "dataset.n_rows=3000",
                     "dataset.hist_len=0", "logger=none", fast=False)


def e801(ctx):
    from recframe_datasets.seq_txt import load_seq_txt

    path = write(ctx, "1 10\n1 11\n2 10 5\n", "seq.txt")
    return message(lambda: load_seq_txt(cfg(name="seq_txt", path=str(path))))


def e802(ctx):
    from recframe_datasets.seq_txt import load_seq_txt

    path = write(ctx, "1 10\n1 11\n", "seq.txt")
    return message(lambda: load_seq_txt(cfg(name="seq_txt", path=str(path),
                                            md5="90ee83b589a4b2c2306bc8284214fdf5")))


def e803(ctx):
    from recframe_datasets.amazon_games import load_amazon_games

    ctx.monkeypatch.setenv("RECFRAME_DATA_DIR", str(ctx.tmp))
    return message(lambda: load_amazon_games(cfg(name="amazon-games",
                                                 cache_dir=str(ctx.tmp / "cache"))))


def e804(ctx):
    from recframe_splitters.leave_one_out import build_leave_one_out

    split = build_leave_one_out(cfg(name="leave_one_out"))
    rows = [[u, 1, 1.0, 5] for u in range(30)] + [[u, 2, 1.0, 6] for u in range(10)]
    return message(lambda: split(frame(rows)))


def e810(ctx):
    return run_error(ctx, "model=pop", "+model.item_text=add")


def e811(ctx):
    from recframe.data.item_text import item_text_vectors

    return message(lambda: item_text_vectors(encoded()))


def e813(ctx):
    from unittest import mock

    from recframe.data import text_encoders
    from tests.test_content_model import FakeEncoder

    with mock.patch.object(text_encoders, "load_encoder", lambda name, device: FakeEncoder()), \
            mock.patch.object(text_encoders, "missing_dependency", lambda encoder: None):
        return run_error(ctx, "model=bpr", "model.item_text=field", "text.encoder=fake",
                         f"text.cache_dir={ctx.tmp / 'text'}")


def e812(ctx):
    from recframe.data.item_text import item_texts

    return message(lambda: item_texts(encoded(item_features=True), "{title}. {plot}"))


def e830(ctx):
    def define():
        class RowBatches(RecModel):
            train_format = "rows"

    return message(define)


def e831(ctx):
    from recframe.scaffold import new_plugin

    return message(lambda: new_plugin("bpr", ctx.tmp))


def e832(ctx):
    def register(registry):
        registry.add(DatasetSpec(name="plays", load=lambda c: Dataset(
            pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2]}), name="plays",
            meta={"fingerprint": 20260101})))

    conf = ctx.tmp / "conf" / "dataset"
    conf.mkdir(parents=True)
    (conf / "plays.yaml").write_text("name: plays\n")
    plugin = toy_plugin("plays_plugin", recframe_register_datasets=register,
                        recframe_config_searchpath=lambda: f"file://{ctx.tmp / 'conf'}")
    from recframe.testing import plugin_manager, run

    return message(lambda: run("dataset=plays", "model=pop", "preprocess=none",
                               "logger=none", pm=plugin_manager(plugin)))


def e833(ctx):
    return resolve_error(ctx, "metrics.names=[recall,{name: ndcg, gain: exponential}]")


def e834(ctx):
    return resolve_error(ctx, "metrics.names=[{name: recall, denominator: k}]")


def e835(ctx):
    return resolve_error(ctx, "metrics.names=[recall,{name: recall, label: recall}]")


def _seq_build(model: str, n_items: int = 30, **params):
    from recframe.api import DataInfo
    from recframe.plugin.manager import default_manager

    spec = default_manager().models.get(model)
    return spec.build(DataInfo(n_users=5, n_items=n_items, has_timestamps=True),
                      cfg(name=model, **params))


def e850(ctx):
    return run_error(ctx, "model=sasrec", "split=leave_one_out", "model.loss=bpr")


def e851(ctx):
    return run_error(ctx, "model=hstu", "split=leave_one_out", "model.loss.temperature=0")


def e852(ctx):
    return message(lambda: _seq_build("hstu", loss={"name": "sampled_softmax",
                                                     "num_negatives": 128}))


def e853(ctx):
    return run_error(ctx, "model=hstu", "split=leave_one_out", "model.loss.negatives=zipf")


def e854(ctx):
    return message(lambda: _seq_build("gru4rec", loss={"name": "sampled_softmax",
                                                       "num_negative": 16}))


def e855(ctx):
    model = _seq_build("hstu", max_seq_len=4)
    return message(lambda: model.encode(torch.arange(6).unsqueeze(0)))


def _cold(kind: str, **kw):
    from recframe_splitters.cold import build_cold

    return build_cold(kind)(cfg(name=f"cold_{kind}", **kw))


# reliability: outputs, validation, optimizer, keys, concurrent runs ----------------------


def _semantic(ctx, **kw):
    from recframe_generative.semantic_ids import SemanticIdSettings

    return SemanticIdSettings(cache_dir=str(ctx.tmp / "sid"), epochs=2, kmeans_iters=2, **kw)


def e860(ctx):
    from recframe_generative.semantic_ids import item_embeddings

    return message(lambda: item_embeddings(encoded(), _semantic(ctx, source="text")))


def e861(ctx):
    from recframe.data.encode import encode
    from recframe_generative.semantic_ids import item_embeddings

    rows = [[u, i, 1.0, u * 10 + i] for u in range(4) for i in range(4)]
    held_out = frame([[0, 4, 1.0, 99]])  # item 4 only in the test part: no train interaction
    data = encode(Split(frame(rows), held_out.with_interactions(held_out.interactions.iloc[:0]),
                        held_out))
    return message(lambda: item_embeddings(data, _semantic(ctx, source="svd", svd_dim=2,
                                                           missing="error")))


def e862(ctx):
    from recframe_generative.semantic_ids import build_semantic_ids

    settings = _semantic(ctx, source="svd", svd_dim=2, levels=1, codebook_size=2,
                         collision_codes=1, hidden=(4,), latent_dim=2)
    return message(lambda: build_semantic_ids(encoded(), settings))


def e863(ctx):
    return run_error(ctx, "model=tiger", "split=leave_one_out", "model.temperature=0")


def e864(ctx):
    return run_error(ctx, "model=tiger", "split=leave_one_out", "model.beam_size=0")


def e865(ctx):
    return run_error(ctx, "model=tiger", "split=leave_one_out", "model.max_seq_len=10",
                     "model.max_positions=32")


def e870(ctx):
    from recframe import faults
    from recframe.results import write_json

    ctx.monkeypatch.setenv(faults.FAULT_AT, "1")
    ctx.monkeypatch.setenv(faults.FAULT_KIND, "enospc")
    faults.reset()
    return message(lambda: write_json(ctx.tmp / "results.json", {"status": "ok"}))


def e871(ctx):
    from recframe.hydra_app import check_output_dir

    write(ctx, "not a directory", "outputs")
    return message(lambda: check_output_dir([f"output_root={ctx.tmp / 'outputs' / 'x'}"]))


def e872(ctx):
    path = write(ctx, "user_id,item_id\n1,1\n1,2\n2,1\n")
    return run_error(ctx, "dataset=csv", f"dataset.path={path}", "dataset.columns.rating=null",
                     "dataset.columns.timestamp=null", "preprocess=none", "model=pop",
                     "logger=none", fast=False)


def e873(ctx):
    return run_error(ctx, "model=bpr", "optim.lr=-1")


def e874(ctx):
    from recframe.config_keys import check_override_keys

    return message(lambda: check_override_keys(["model=bpr", "model.embeding_dim=64"]))


def e875(ctx):
    import json

    from recframe import joblock

    (ctx.tmp / "results.json").write_text(json.dumps(
        {"status": "ok", "config": {"model": {"name": "pop"}, "seed": 0}}))
    joblock.claim(ctx.tmp, {"model": {"name": "bpr"}, "seed": 0})
    return message(lambda: joblock.raise_if_blocked(ctx.tmp))


def e876(ctx):
    from filelock import FileLock

    from recframe import joblock

    ctx.monkeypatch.setenv(joblock.LOCK_TIMEOUT_ENV, "0.1")
    other = FileLock(str(ctx.tmp / joblock.LOCK_FILE))
    other.acquire()
    try:
        joblock.claim(ctx.tmp, {"seed": 0})
    finally:
        other.release()
    return message(lambda: joblock.raise_if_blocked(ctx.tmp))


def e877(ctx):
    ratings = write(ctx, "user_id,item_id,rating,timestamp\n" + GOOD_ROWS)
    items = write(ctx, "item_id,genre\n\n", "items.csv")
    return message(lambda: load_csv(ratings, item_features={"path": str(items)}))


def e878(ctx):
    return run_error(ctx, "model=pop", "trainer.check_val_every_n_epoch=0")


def e879(ctx):
    return run_error(ctx, "model=pop", "callbacks.early_stopping.monitor=val/ndcg@5")


def e880(ctx):
    return run_error(ctx, "model=bpr", "model.init_std=-1")


def e881(ctx):
    return resolve_error(ctx, "metrics.names=-1")


def e882(ctx):
    return run_error(ctx, "model=bpr", "model.batch_size=0")


def w870(ctx):
    from recframe_preprocess.binarize import build_binarize

    step = build_binarize(cfg(name="binarize"))
    with ctx.caplog.at_level(logging.WARNING, logger="recframe_preprocess"):
        step(frame([[1, 2], [1, 3]], columns=("user_id", "item_id")))
    return ctx.caplog.text


def w871(ctx):
    from recframe.hydra_app import compose_config
    from recframe.runner import _WARNED_OPTIM, _optim_overrides

    _WARNED_OPTIM.clear()  # warned once per process
    run_cfg = compose_config(["model=sasrec", "optim.lr=0.0123"])
    with pytest.warns(UserWarning) as caught:
        assert _optim_overrides(run_cfg, {"optim.lr"})["lr"] == run_cfg.model.lr
    return str(caught[0].message)
def _ooc_shards(ctx, *overrides):
    """Prepare synthetic data out of core into ``tmp/shards``; returns the directory."""
    from recframe.pipeline import prepare, resolve
    from recframe.plugin.manager import default_manager

    conf = ctx.compose("dataset=synthetic", "data.engine=duckdb",
                       f"data.shard_dir={ctx.tmp / 'shards'}", *overrides)
    prepare(conf, resolve(conf, default_manager()))
    return ctx.tmp / "shards"


def _ooc_prepare(ctx, *overrides):
    from recframe.pipeline import prepare, resolve
    from recframe.plugin.manager import default_manager

    conf = ctx.compose("dataset=synthetic", "data.engine=duckdb",
                       f"data.shard_dir={ctx.tmp / 'shards'}", *overrides)
    return message(lambda: prepare(conf, resolve(conf, default_manager())))


def e920(ctx):
    return resolve_error(ctx, "data.engine=spark")


def e921(ctx):
    return resolve_error(ctx, "data.engine=duckdb", "split=cold_items")


def e922(ctx):
    _ooc_shards(ctx)
    return _ooc_prepare(ctx, "split.seed=5")


def e923(ctx):
    shards = _ooc_shards(ctx)
    (shards / "manifest.json").unlink()
    return _ooc_prepare(ctx)


def e924(ctx):
    import json

    shards = _ooc_shards(ctx)
    manifest = json.loads((shards / "manifest.json").read_text())
    manifest["format_version"] = 0
    (shards / "manifest.json").write_text(json.dumps(manifest))
    return _ooc_prepare(ctx)


def e925(ctx):
    import sys

    ctx.monkeypatch.setitem(sys.modules, "duckdb", None)
    return _ooc_prepare(ctx)


def e926(ctx):
    return _ooc_prepare(ctx, "model=deepfm")


def e928(ctx):
    return _ooc_prepare(ctx, "privacy=dpsgd", "privacy.epsilon=4", "data.streaming=true")


def e940(ctx):
    from recframe.api import DataInfo
    from recframe_cf.itemknn import build_itemknn

    return message(lambda: build_itemknn(DataInfo(n_users=2, n_items=10**8),
                                         cfg(neighbours=300)))


def e929(ctx):
    return run_error(ctx, "model=bpr", "model.sparse_grad=true")


def e927(ctx):
    return resolve_error(ctx, "data.engine=duckdb", "data.shard_rows=0")


def _ray_prepare(ctx, *overrides):
    return _ooc_prepare(ctx, "data.engine=ray", *overrides)


def e930(ctx):
    import sys

    ctx.monkeypatch.setitem(sys.modules, "ray", None)
    return resolve_error(ctx, "data.engine=ray")


def e931(ctx):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return _ray_prepare(ctx, f"data.ray.address=ray://127.0.0.1:{port}",
                        "data.ray.connect_timeout_s=2")


def e932(ctx):
    return resolve_error(ctx, "data.engine=ray", "split=temporal")


def e933(ctx):
    return resolve_error(ctx, "data.engine=ray", "data.ray.num_workers=0")


def e934(ctx):
    import types

    from recframe.data.ooc.ray_engine import _get

    ray = pytest.importorskip("ray")

    def get(refs):
        raise ray.exceptions.RayTaskError("encode", "Traceback ...", MemoryError("worker OOM"))

    fake = types.SimpleNamespace(get=get, exceptions=ray.exceptions)
    return message(lambda: _get(fake, []))


def e951(ctx):
    return message(lambda: _cold("items", cold_share=1.5))


def e952(ctx):
    rows = [[u, i, 1.0, u + i] for u in range(4) for i in range(2)]
    return message(lambda: _cold("items", cold_share=0.2)(frame(rows)))


def e953(ctx):
    rows = [[u, i, 1.0, u + i] for u in range(4) for i in range(3)]
    return message(lambda: _cold("users", cold_share=0.9)(frame(rows)))


def e954(ctx):
    return message(lambda: _cold("items", ratios=[0.9, 0.1, 0.0]))


def e955(ctx):
    return run_error(ctx, "model=pop", "metrics.monitor=warm/ndcg@10")


def e956(ctx):
    return run_error(ctx, "model=pop", "split=cold_items", "metrics.monitor=cold/ndcg@10")


def e971(ctx):
    import importlib.util

    from recframe_llm.smollm2 import SmolLM2Backend

    real = importlib.util.find_spec
    ctx.monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name == "gguf" else real(name, *a))
    return message(lambda: SmolLM2Backend.from_config(cfg(device="cpu")))


def e972(ctx):
    import socket

    from recframe_llm.openai_compatible import OpenAICompatibleBackend

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = OpenAICompatibleBackend.from_config(cfg(
        base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=1, retries=1,
        backoff_s=0))
    return message(lambda: backend.generate("system", "prompt", 10))


def e973(ctx):
    from recframe.rerank.prompts import fit_history, history_text

    return message(lambda: fit_history(["a b"] * 3, lambda h: history_text(h) + " x" * 40,
                                       lambda t: len(t.split()), 20, "rerank.backend=fake"))


def e974(ctx):
    return run_error(ctx, "model=pop", "rerank=llm", "rerank.backend=openai_compatible",
                     "rerank.base_url=http://127.0.0.1:9/v1", "rerank.model=m",
                     "rerank.mode=pointwise", "rerank.max_users=2")


def e975(ctx):
    return run_error(ctx, "model=pop", "evaluation=sampled", "rerank=llm",
                     "rerank.backend=fake", "rerank.max_users=2", "rerank.cache=false")


def e976(ctx):
    from recframe_llm.openai_compatible import OpenAICompatibleBackend

    return message(lambda: OpenAICompatibleBackend.from_config(cfg(model="m")))


def e840(ctx):
    from recframe.plugin import PluginManager, lazy

    def register(registry):
        registry.add(ModelSpec(name="graph", build=lazy("recframe_graphs.model:build_graph")))

    pm = PluginManager([toy_plugin("graphs", recframe_register_models=register)],
                       load_entry_points=False)
    assert "graph" in pm.models  # registering imported nothing
    return message(lambda: pm.models.get("graph"))


def e841(ctx):
    from recframe.plugin import PluginManager, lazy

    def register(registry):
        registry.add(ModelSpec(name="graph", build=lazy("recframe_graphs.model.build_graph")))

    plugin = toy_plugin("graphs", recframe_register_models=register)
    return message(lambda: PluginManager([plugin], load_entry_points=False))


def e910(ctx):
    return run_error(ctx, "model=bpr", "privacy=dpsgd", "privacy.epsilon=0")


def e911(ctx):
    return run_error(ctx, "model=bpr", "privacy=dpsgd", "privacy.delta=1.0")


def e912(ctx):
    return run_error(ctx, "model=bpr", "privacy=dpsgd", "privacy.max_grad_norm=0")


def e913(ctx):
    return run_error(ctx, "model=lightgcn", "privacy=dpsgd")


def e914(ctx):
    return run_error(ctx, "model=pop", "privacy=dpsgd")


def e915(ctx):
    from recframe_preprocess.kanon import build_k_anonymize

    users = pd.DataFrame({"age": [20, 30, 40]}, index=pd.Index([1, 2, 3], name="user_id"))
    ds = Dataset(pd.DataFrame({"user_id": [1, 2, 3], "item_id": [1, 1, 1]}), users=users)
    return message(lambda: build_k_anonymize(cfg(name="k_anonymize", k=5))(ds))


def e916(ctx):
    return run_error(ctx, "model=pop", "metrics.names=[ndcg,mia_auc]")


def e917(ctx):
    return run_error(ctx, "model=pop", "privacy.audit_users=0.7")


def e918(ctx):
    return run_error(ctx, "model=ials", "privacy=dp_stats")


def e919(ctx):
    return run_error(ctx, "model=sasrec", "privacy=dpsgd", "privacy.user_state=local")


TRIGGERS: dict[str, Callable[[Ctx], str]] = {
    name.upper(): fn for name, fn in dict(globals()).items()
    if re.fullmatch(r"[ew]\d{3}", name) and callable(fn)
}


# --------------------------------------------------------------------------- the doc


def catalogue() -> dict[str, list[str]]:
    """Entry id -> the catalogued text fragments, parsed from docs/errors.md."""
    return {entry: fragments for entry, (fragments, _) in parse_doc().items()}


def parse_doc() -> dict[str, tuple[list[str], str]]:
    """Entry id -> (key text fragments, the example message of its fenced block)."""
    entries: dict[str, tuple[list[str], str]] = {}
    current, example, in_block = None, [], False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^###\s+([EW]\d{3})\b", line)
        if heading:
            current = heading.group(1)
            assert current not in entries, f"{current} is catalogued twice"
            entries[current] = ([], "")
            example = []
        elif current and line.strip() == "```":
            in_block = not in_block
            if not in_block and not entries[current][1]:
                entries[current] = (entries[current][0], "\n".join(example))
        elif current and in_block:
            example.append(line.strip())
        elif current and line.startswith("- **Key text:**"):
            entries[current] = (re.findall(r'"([^"]+)"', line), entries[current][1])
    return entries


def test_every_catalogued_error_has_a_trigger_and_key_text():
    doc = parse_doc()
    assert doc, "no entries found in docs/errors.md"
    assert sorted(doc) == sorted(TRIGGERS), (
        f"only in docs/errors.md: {sorted(set(doc) - set(TRIGGERS))}; "
        f"only in this test: {sorted(set(TRIGGERS) - set(doc))}"
    )
    for entry, (fragments, example) in doc.items():
        assert fragments, f"{entry} has no key text"
        assert example, f"{entry} has no example message"
        for fragment in fragments:
            assert fragment in example, f"{entry}: key text {fragment!r} not in its example"


@pytest.mark.parametrize("entry", sorted(TRIGGERS))
def test_catalogued_message(entry, tmp_path, compose, monkeypatch, caplog, capsys):
    text = TRIGGERS[entry](Ctx(tmp_path, compose, monkeypatch, caplog, capsys))
    if os.environ.get("RECFRAME_PRINT_CATALOGUE"):  # to refresh the examples in the doc
        print(f"\n@@ {entry}\n{text.replace(str(tmp_path), '/data')}\n@@")
    fragments = catalogue().get(entry)
    assert fragments, f"{entry} is not in docs/errors.md"
    for fragment in fragments:
        assert fragment in text, f"{entry}: {fragment!r} not in {text!r}"
