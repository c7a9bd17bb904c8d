"""The dataset catalogue: seq_txt, amazon-games, synthetic_long, `recframe datasets` /
`recframe describe`, and leave-one-out on data with too little history."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from recframe.api import ConfigError, DataError, Dataset
from recframe.cli import main
from recframe_datasets.amazon_games import load_amazon_games
from recframe_datasets.download import download_file
from recframe_datasets.seq_txt import load_seq_txt
from recframe_datasets.synthetic import load_synthetic, load_synthetic_long
from recframe_preprocess.binarize import build_binarize
from recframe_preprocess.clean import build_dedup
from recframe_splitters.leave_one_out import build_leave_one_out

DATA_DIR = os.environ.get("RECFRAME_DATA_DIR")
VIDEO = Path(DATA_DIR, "amazon-games", "Video.txt") if DATA_DIR else None
needs_video = pytest.mark.skipif(VIDEO is None or not VIDEO.is_file(),
                                 reason="amazon-games/Video.txt not under $RECFRAME_DATA_DIR")


def cfg(**kw):
    return OmegaConf.create(kw)


def seq_file(tmp_path: Path, text: str, name: str = "seq.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- seq_txt ------------------------------------------------------------------------------


def test_seq_txt_positions_become_timestamps(tmp_path):
    path = seq_file(tmp_path, "1 10\n1 12\n1 11\n\n2 10\n2   13\n3 12\n")
    ds = load_seq_txt(cfg(name="seq_txt", path=str(path)))
    df = ds.interactions
    assert list(df.columns) == ["user_id", "item_id", "timestamp"]
    assert df["user_id"].tolist() == [1, 1, 1, 2, 2, 3]
    assert df["item_id"].tolist() == [10, 12, 11, 10, 13, 12]
    assert df["timestamp"].tolist() == [0, 1, 2, 0, 1, 0]
    assert ds.meta["timestamp_kind"] == "order" and ds.meta["implicit"]
    assert not ds.has_ratings and ds.has_timestamps and not ds.meta["verified"]


def test_seq_txt_string_ids_and_interleaved_users(tmp_path):
    path = seq_file(tmp_path, "alice x\nbob y\nalice z\n")
    df = load_seq_txt(cfg(name="seq_txt", path=str(path))).interactions
    assert df["user_id"].tolist() == ["alice", "bob", "alice"]
    assert df["timestamp"].tolist() == [0, 0, 1]


def test_implicit_preprocessing_keeps_every_row(tmp_path):
    path = seq_file(tmp_path, "".join(f"{u} {i}\n" for u in range(3) for i in range(5)))
    ds = load_seq_txt(cfg(name="seq_txt", path=str(path)))
    out = build_binarize(cfg(name="binarize"))(build_dedup(cfg(name="dedup"))(ds))
    assert len(out.interactions) == 15


@pytest.mark.parametrize("text, line, saw", [
    ("1 10\n1\n", 2, 1),           # too few fields
    ("1 10 5\n1 11\n", 1, 3),      # too many on the first line
    ("1 10\n\n\n2 10 5\n", 4, 3),  # too many later (blank lines counted)
])
def test_seq_txt_bad_line_names_file_and_line(tmp_path, text, line, saw):
    path = seq_file(tmp_path, text)
    with pytest.raises(DataError) as info:
        load_seq_txt(cfg(name="seq_txt", path=str(path)))
    msg = str(info.value)
    assert str(path) in msg and f"line {line}:" in msg and f"saw {saw}" in msg


def test_seq_txt_md5(tmp_path):
    path = seq_file(tmp_path, "1 10\n1 11\n")
    good = hashlib.md5(path.read_bytes()).hexdigest()
    assert load_seq_txt(cfg(name="seq_txt", path=str(path), md5=good)).meta["verified"]
    with pytest.raises(DataError, match=r"checksum mismatch \(md5 .*expected 0{32}\)"):
        load_seq_txt(cfg(name="seq_txt", path=str(path), md5="0" * 32))
    with pytest.raises(ConfigError, match="dataset.md5` must be an md5 hex digest"):
        load_seq_txt(cfg(name="seq_txt", path=str(path), md5="abc"))


def test_seq_txt_missing_file_and_unknown_key(tmp_path):
    with pytest.raises(DataError, match="file not found: .*config key `dataset.path`"):
        load_seq_txt(cfg(name="seq_txt", path=str(tmp_path / "nope.txt")))
    with pytest.raises(ConfigError, match="unknown config key `dataset.pth`"):
        load_seq_txt(cfg(name="seq_txt", pth="x"))


# -- amazon-games ---------------------------------------------------------------------------


@needs_video
def test_amazon_games_from_the_data_dir():
    start = time.perf_counter()
    ds = load_amazon_games(cfg(name="amazon-games"))
    seconds = time.perf_counter() - start
    df = ds.interactions
    assert (len(df), df["user_id"].nunique(), df["item_id"].nunique()) == (287_107, 31_013,
                                                                         23_715)
    assert ds.meta["verified"] and ds.meta["timestamp_kind"] == "order"
    assert ds.name == "amazon-games" and seconds < 5, seconds
    # dataset.path may name the directory or the file
    for path in (VIDEO.parent, VIDEO):
        assert len(load_amazon_games(cfg(name="amazon-games", path=str(path)))) == 287_107


def test_amazon_games_missing_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RECFRAME_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError) as info:
        load_amazon_games(cfg(name="amazon-games", cache_dir=str(tmp_path / "cache")))
    msg = str(info.value)
    for text in ("Looked in:", str(tmp_path / "amazon-games" / "Video.txt"),
                 str(tmp_path / "cache" / "amazon-games" / "Video.txt"),
                 "github.com/kang205/SASRec", "ICDM 2018", "dataset.path",
                 "RECFRAME_DATA_DIR"):
        assert text in msg, text
    monkeypatch.delenv("RECFRAME_DATA_DIR")
    with pytest.raises(DataError, match=r"dataset.download` is false: set"):
        load_amazon_games(cfg(name="amazon-games", cache_dir=str(tmp_path / "cache"),
                              url="https://example.invalid/Video.txt"))
    with pytest.raises(DataError, match=r"dataset.path='.*nope'.*not found"):
        load_amazon_games(cfg(name="amazon-games", path=str(tmp_path / "nope")))


def test_amazon_games_wrong_file_is_a_checksum_error(tmp_path):
    seq_file(tmp_path, "1 2\n", "Video.txt")
    with pytest.raises(DataError, match="checksum mismatch.*kang205/SASRec"):
        load_amazon_games(cfg(name="amazon-games", path=str(tmp_path)))


def test_download_file_checks_the_md5_and_installs_nothing_on_mismatch(tmp_path):
    source = seq_file(tmp_path, "1 2\n", "remote.txt")
    target = tmp_path / "cache" / "Video.txt"
    with pytest.raises(DataError, match="checksum mismatch"):
        download_file(source.as_uri(), target, "0" * 32)
    assert not target.exists() and [p.name for p in target.parent.iterdir()] == [
        "Video.txt.lock"]
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    assert download_file(source.as_uri(), target, md5).read_text() == "1 2\n"


# -- synthetic / synthetic_long ---------------------------------------------------------------


def frames_hash(ds: Dataset) -> str:
    h = hashlib.sha256()
    for frame in (ds.interactions, ds.items, ds.users):
        h.update(frame.to_csv().encode())
    return h.hexdigest()


def test_default_synthetic_output_is_unchanged():
    # hashes computed before the sequential options existed
    ds = load_synthetic(cfg(name="synthetic"))
    assert frames_hash(ds) == "75c9f20aea0808ee6763b3a7d08678288c68c727bf47f7ad540e03a83d7c8ae8"
    assert ds.meta["fingerprint"] == "040b252c34c107a730fb2fc85e427a0b"
    assert "sequential_strength" not in ds.meta["generator"]
    ds = load_synthetic(cfg(name="synthetic", string_ids=True, n_users=50, seed=3))
    assert frames_hash(ds) == "c7905015699fa60b6bb3658c7910370348bb12316a62f776d8253dcdf4d411b2"
    assert ds.meta["fingerprint"] == "5d68bc36071d6d870d82204d7a7885bf"


def test_synthetic_long_sizes_and_planted_sequences():
    start = time.perf_counter()
    ds = load_synthetic_long(cfg(name="synthetic_long"))
    assert time.perf_counter() - start < 10
    df = ds.interactions
    sizes = df.groupby("user_id").size()
    assert ds.name == "synthetic_long" and df["user_id"].nunique() == 600
    assert 900 <= df["item_id"].nunique() <= 1000
    assert sizes.min() >= 100 and sizes.max() <= 500 and 150 <= sizes.mean() <= 250
    assert sizes.quantile(0.5) > 50 * 3  # histories well beyond a max_seq_len of 50
    assert len(df) <= 150_000
    assert not ds.has_ratings and ds.meta["implicit"]  # the default binarize keeps every event
    assert len(build_binarize(cfg(name="binarize"))(ds).interactions) == len(df)
    assert not df.duplicated(["user_id", "item_id"]).any()
    assert (df.groupby("user_id")["timestamp"].diff().dropna() > 0).all()
    # the planted structure: many next items are successors of the previous one
    succ = ds.meta["item_successors"]
    items, users = df["item_id"].to_numpy(), df["user_id"].to_numpy()
    same = users[1:] == users[:-1]
    follows = (succ[items[:-1]] == items[1:, None]).any(axis=1)[same]
    assert follows.mean() > 0.4, follows.mean()


def test_synthetic_long_settings_are_checked_and_change_the_fingerprint():
    small = dict(name="synthetic_long", n_users=20, n_items=100, min_per_user=10,
                 mean_per_user=20, max_per_user=30)
    a = load_synthetic_long(cfg(**small))
    b = load_synthetic_long(cfg(**small, sequential_strength=0.2))
    assert a.meta["fingerprint"] != b.meta["fingerprint"]
    assert a.interactions.groupby("user_id").size().max() <= 30
    with pytest.raises(ConfigError, match="sequential_strength must be in \\[0, 1\\].*"
                                          "synthetic_long.yaml"):
        load_synthetic_long(cfg(**small, sequential_strength=1.5))
    with pytest.raises(ConfigError, match="max_per_user must be 0"):
        load_synthetic(cfg(name="synthetic", max_per_user=2))


# -- the commands ---------------------------------------------------------------------------


def test_datasets_command_lists_names_and_descriptions(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("amazon-games", "seq_txt", "synthetic_long", "ml-100k", "csv"):
        assert name in out
    assert "Kang & McAuley" in out


def test_describe_prints_statistics(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = seq_file(tmp_path, "".join(f"{u} {i}\n" for u in range(4) for i in range(u + 2)))
    assert main(["describe", "dataset=seq_txt", f"dataset.path={path}"]) == 0
    out = capsys.readouterr().out
    for text in ("users          4", "items          5", "interactions   14",
                 "min 2, 25%", "max 5", "timestamps     yes (an order", "ratings        no",
                 "labels         no", "item fields    none"):
        assert text in out, (text, out)
    assert main(["describe", "dataset=synthetic", "dataset.n_users=40", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["users"] == 40 and stats["ratings"] and stats["timestamps"] == "time"
    assert {"name": "category", "kind": "categorical", "owner": "item"} in stats["fields"]
    assert set(stats["history_length"]) == {"min", "25%", "50%", "75%", "90%", "max", "mean"}
    assert list(tmp_path.iterdir()) == [path]  # nothing written


def test_describe_unknown_dataset_suggests_the_closest(capsys):
    assert main(["describe", "dataset=amazn-games"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'amazn-games'" in err and "Did you mean 'amazon-games'?" in err
    assert "synthetic_long" in err


def test_describe_missing_file_is_exit_2_and_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "none" / "Video.txt"
    assert main(["describe", "dataset=amazon-games", f"dataset.path={missing}"]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "kang205/SASRec" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
    assert main(["describe"]) == 2
    assert "name the data set" in capsys.readouterr().err


@needs_video
def test_describe_amazon_games(capsys):
    assert main(["describe", "dataset=amazon-games"]) == 0
    out = capsys.readouterr().out
    assert "interactions   287,107" in out and "users          31,013" in out


# -- leave-one-out on short histories ---------------------------------------------------------


def loo_frame(n_short: int, n_long: int) -> Dataset:
    rows = [(u, 1, 0) for u in range(n_short)]
    rows += [(n_short + u, i, i) for u in range(n_long) for i in range(4)]
    return Dataset(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]),
                   name="short")


def test_leave_one_out_refuses_data_where_most_users_are_too_short():
    split = build_leave_one_out(cfg(name="leave_one_out"))
    with pytest.raises(DataError) as info:
        split(loo_frame(30, 10))
    msg = str(info.value)
    assert "30 of 40 users (75%)" in msg and "split=random" in msg and "implicit_5core" in msg
    out = split(loo_frame(20, 20))  # half: fine
    assert len(out.test.interactions) == 20
    assert np.all(out.test.interactions["timestamp"] == 3)
