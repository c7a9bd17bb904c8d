"""Click-log data sets (plugin ``recframe_datasets``): ml-100k-ctr, ctr_log, synthetic_ctr."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from recframe.api import ITEM, LABEL, TIMESTAMP, USER, ConfigError, DataError, Dataset
from recframe.data import fields as core_fields
from recframe_datasets import ctr_fields, plugin

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RECFRAME_DATA_DIR", REPO.parent / "shared" / "data"))
ML_DIR = DATA / "ml-100k"
SAMPLES = DATA / "ctr-samples"
CONF = REPO / "conf" / "dataset"
needs_ml = pytest.mark.skipif(not (ML_DIR / "u.data").is_file(),
                              reason=f"MovieLens-100K not found at {ML_DIR}")
needs_samples = pytest.mark.skipif(not (SAMPLES / "criteo_sample.txt").is_file(),
                                   reason=f"CTR samples not found at {SAMPLES}")
CTR_NAMES = ("ml-100k-ctr", "ctr_log", "criteo", "avazu", "synthetic_ctr")


def cfg(**values):
    return OmegaConf.create(values)


def check_schema(ds: Dataset) -> list[dict]:
    """The declarations follow the spec: kinds/owners known, each non-sequence field a
    column of its owner's frame, labels 0/1 ints with both classes."""
    fields = ds.meta["fields"]
    frames = {"context": ds.interactions, "user": ds.users, "item": ds.items}
    for f in fields:
        assert f["kind"] in core_fields.FIELD_KINDS, f
        assert f["owner"] in core_fields.OWNERS, f
        assert set(f) <= set(ctr_fields.FIELD_KEYS), f
        if f["kind"] == "sequence":
            assert f["owner"] == "context" and f["shares"] == ITEM and f["max_len"] >= 1
        else:
            assert f["name"] in frames[f["owner"]].columns, f
        if f["kind"] == "numeric":
            assert f.get("normalize", "standard") in core_fields.NORMALIZATIONS
            assert pd.api.types.is_numeric_dtype(frames[f["owner"]][f["name"]])
    label = ds.interactions[LABEL]
    assert label.dtype == np.int64 and set(np.unique(label)) == {0, 1}
    assert ds.meta["fingerprint"]
    for frame, key in ((ds.users, USER), (ds.items, ITEM)):
        if frame is not None:
            assert frame.index.name == key and frame.index.is_unique
    return fields


def test_field_constants_match_the_core():
    assert ctr_fields.FIELD_KINDS == core_fields.FIELD_KINDS
    assert ctr_fields.OWNERS == core_fields.OWNERS
    assert ctr_fields.NORMALIZATIONS == core_fields.NORMALIZATIONS


def test_plugin_registers_the_click_logs():
    specs = []

    class Collect:
        def add(self, spec):
            specs.append(spec)

    plugin.recframe_register_datasets(Collect())
    names = {s.name: s for s in specs}
    for name in ("ml-100k-ctr",):
        assert name in names and names[name].description


@pytest.mark.parametrize("name", ["ml-100k-ctr"])
def test_config_files_name_registry_key_and_comment_every_key(name):
    path = CONF / f"{name}.yaml"
    for line in path.read_text().splitlines():
        if ":" in line.split("#")[0] and not line.lstrip().startswith("#"):
            assert "#" in line, f"{path.name}: uncommented key: {line!r}"


# --------------------------------------------------------------------------- ml-100k-ctr

def ml_ctr(**values):
    return plugin.load_ml100k_ctr(cfg(name="ml-100k-ctr", path=str(ML_DIR), download=False,
                                      **values))


@needs_ml
def test_ml100k_ctr_impressions_fields_and_meta():
    ds = ml_ctr()
    df = ds.interactions
    assert list(df.columns) == [USER, ITEM, LABEL, TIMESTAMP]  # no rating: it leaks the label
    assert len(df) == 100_000 and ds.meta["verified"] is True
    assert abs(df[LABEL].mean() - 0.55375) < 1e-9 and ds.meta["label_rate"] == df[LABEL].mean()
    fields = {f["name"]: f for f in check_schema(ds)}
    assert {n: (f["kind"], f["owner"]) for n, f in fields.items()} == {
        "age": ("numeric", "user"), "gender": ("categorical", "user"),
        "occupation": ("categorical", "user"), "zip_prefix": ("categorical", "user"),
        "genres": ("multi_categorical", "item"), "release_year": ("numeric", "item"),
        "title": ("text", "item"), "hist": ("sequence", "context")}
    assert fields["age"]["buckets"] == 8 and fields["hist"]["max_len"] == 20
    assert fields["genres"]["sep"] == "|" and fields["genres"]["max_len"] == 6
    assert ds.items.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert ds.items.loc[1, "release_year"] == 1995 and ds.items.loc[1, "title"].startswith("Toy")
    assert ds.users.loc[1, "zip_prefix"] == "85" and ds.users.zip_prefix.nunique() == 111
    assert len(ds.users) == 943 and len(ds.items) == 1682


@needs_ml
def test_ml100k_ctr_options_change_labels_fields_and_fingerprint():
    base = ml_ctr()
    ds = ml_ctr(threshold=5, zip_prefix=3, age_buckets=0, hist_len=0,
                fields=[{"name": "release_year", "buckets": 5}])
    assert ds.interactions[LABEL].mean() < 0.3 and ds.users.zip_prefix.nunique() == 382
    fields = {f["name"]: f for f in check_schema(ds)}
    assert "hist" not in fields and fields["age"]["buckets"] == 0
    assert fields["release_year"]["buckets"] == 5
    assert ds.meta["fingerprint"] != base.meta["fingerprint"]
    assert ml_ctr().meta["fingerprint"] == base.meta["fingerprint"]


@needs_ml
@pytest.mark.parametrize("values, match", [
    ({"threshold": 0}, "every label 1"),
    ({"threshold": 6}, "every label 0"),
    ({"threshold": "high"}, "dataset.threshold"),
    ({"zip_prefix": 0}, "dataset.zip_prefix"),
    ({"hist_len": -1}, "dataset.hist_len"),
    ({"treshold": 4}, "Did you mean 'threshold'"),
    ({"fields": [{"name": "age", "bucket": 3}]}, "Did you mean 'buckets'"),
    ({"fields": [{"name": "age", "kind": "numerical"}]}, "Did you mean 'numeric'"),
    ({"fields": [{"name": "ages", "kind": "numeric"}]}, "no frame has a column 'ages'"),
])
def test_ml100k_ctr_bad_config(values, match):
    with pytest.raises(ConfigError if "frame" not in match else DataError, match=match):
        ml_ctr(**values)
