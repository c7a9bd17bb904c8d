"""Fuzzing the csv/parquet loader: a valid Dataset or a clear error, never anything else.

The loader (``recframe_datasets`` ``csv``) either returns a Dataset that satisfies
the invariants below, or raises :class:`DataError` / :class:`ConfigError` whose
message names the file. Any other exception type is a bug, and so is a silently
wrong result: for well-formed files the loaded values must equal the written ones.

Invariants of a loaded Dataset:

* columns are ``user_id``, ``item_id`` and the mapped optional ``rating``/``timestamp``;
* ids are int64, or strings (every value a non-blank ``str``); never null. A column is
  int64 only if every value is the canonical spelling of an int64 (so ``"5"`` and
  ``"+5"`` never merge);
* ``rating`` is float64 and ``timestamp`` int64 or float64, neither with NaN (``inf``
  may pass: the pipeline rejects it later, pointing at ``drop_invalid``);
* text: one row per non-blank record (a line of empty fields counts as blank), in file
  order; Parquet: one row per row.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from recframe.api import ConfigError, DataError, Dataset
from recframe_datasets.csv_loader import load_csv
from recframe_datasets.tabular import split_line


def fuzz(n: int) -> settings:
    """``n`` examples (times $RECFRAME_FUZZ_SCALE, for a deeper search by hand)."""
    scale = int(os.environ.get("RECFRAME_FUZZ_SCALE", "1"))
    return settings(max_examples=n * scale, deadline=None,
                    suppress_health_check=list(HealthCheck))
CANONICAL_INT = re.compile(r"0|-?[1-9][0-9]*")
INT64 = (-(2**63), 2**63 - 1)


def is_int64_text(text: str) -> bool:
    return bool(CANONICAL_INT.fullmatch(text)) and INT64[0] <= int(text) <= INT64[1]


def load(path: Path, **cfg) -> Dataset | Exception:
    """Load ``path``; return the Dataset or the (allowed) error, which must name the file."""
    try:
        return load_csv(OmegaConf.create({"name": "csv", "path": str(path), **cfg}))
    except (DataError, ConfigError) as err:
        assert str(path) in str(err), f"the message does not name the file: {err}"
        return err


def check_invariants(ds: Dataset, columns: set[str]) -> None:
    df = ds.interactions
    assert set(df.columns) == {"user_id", "item_id"} | columns
    for col in ("user_id", "item_id"):
        values = df[col]
        assert not values.isna().any()
        if values.dtype != np.int64:
            assert all(isinstance(v, str) and v.strip() for v in values), values.dtype
    if "rating" in df:
        assert df["rating"].dtype == np.float64 and not df["rating"].isna().any()
    if "timestamp" in df:
        assert df["timestamp"].dtype in (np.int64, np.float64)
        assert not df["timestamp"].isna().any()
    assert isinstance(df.index, pd.RangeIndex) and df.index.start == 0


# --------------------------------------------------------------------------- well-formed CSV


def id_texts(sep: str) -> st.SearchStrategy[str]:
    """Id spellings: canonical ints (huge ones too), near-ints, and free unicode text."""
    forbidden = set(sep) | {"\r", "\n", "\x00"} | ({'"'} if len(sep) > 1 else set())
    free = st.text(st.characters(blacklist_categories=("Cs", "Cc"),
                                 blacklist_characters=sorted(forbidden)),
                   min_size=1, max_size=6).filter(lambda s: s.strip() != "")
    return st.one_of(
        st.integers(-(2**70), 2**70).map(str),
        st.sampled_from(["007", "+5", "-0", "5", "0", "1e3", "nan", "NA", "null", " 5"]),
        free,
    )


@st.composite
def well_formed(draw):
    sep = draw(st.sampled_from([",", ";", "\t", "|", " ", "::"]))
    n = draw(st.integers(1, 12))
    ids = id_texts(sep)
    users = draw(st.lists(ids, min_size=n, max_size=n))
    items = draw(st.lists(ids, min_size=n, max_size=n))
    if " " in sep:
        users = [u for u in users if " " not in u] or ["1"]
        items = [i for i in items if " " not in i] or ["2"]
        n = min(len(users), len(items))
        users, items = users[:n], items[:n]
    data = {"u": users, "i": items}
    if draw(st.booleans()):
        data["r"] = draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-5, 5),
                                  min_size=n, max_size=n))
    if draw(st.booleans()):
        data["t"] = draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n))
    names = list(data)
    order = draw(st.permutations(names))
    extra = draw(st.booleans())
    header = [*order, *(["note"] if extra else [])]
    rows = [[str(data[c][k]) for c in order] + (["x y"] if extra else []) for k in range(n)]
    blank_after = draw(st.sets(st.integers(0, n - 1), max_size=3))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return sep, header, rows, blank_after, newline, data


def render(sep: str, header: list[str], rows: list[list[str]], blank_after: set[int],
           newline: str) -> str:
    if len(sep) == 1:
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=sep, lineterminator=newline,
                            quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        for k, row in enumerate(rows):
            writer.writerow(row)
            if k in blank_after:
                buf.write(newline)
        return buf.getvalue()
    lines = [sep.join(header)]
    for k, row in enumerate(rows):
        lines.append(sep.join(row))
        if k in blank_after:
            lines.append("")
    return newline.join(lines) + newline


def as_read(texts: list[str], sep: str, first: bool, last: bool) -> list[str]:
    """A regex separator (pandas' python engine) strips whitespace at both line ends."""
    if len(sep) == 1:
        return texts
    return [t.lstrip() if first else t.rstrip() if last else t for t in texts]


def expected_ids(texts: list[str]) -> list:
    return [int(t) for t in texts] if all(is_int64_text(t) for t in texts) else list(texts)


@fuzz(50)
@given(case=well_formed())
def test_well_formed_csv_loads_exactly_what_was_written(case):
    sep, header, rows, blank_after, newline, data = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ratings.csv"
        path.write_bytes(render(sep, header, rows, blank_after, newline).encode("utf-8"))
        columns = {"user_id": "u", "item_id": "i", "rating": "r" if "r" in data else None,
                   "timestamp": "t" if "t" in data else None}
        ds = load(path, sep=sep if sep != "," else None, columns=columns)
    assert isinstance(ds, Dataset), ds
    check_invariants(ds, {c for c in ("rating", "timestamp") if columns[c]})
    df = ds.interactions
    assert len(df) == len(rows)
    for col, key in (("user_id", "u"), ("item_id", "i")):
        position = header.index(key)
        want = expected_ids(as_read(data[key], sep, position == 0,
                                    position == len(header) - 1))
        assert df[col].tolist() == want
        assert (df[col].dtype == np.int64) == isinstance(want[0], int)
    if "r" in data:
        assert df["rating"].tolist() == [float(x) for x in data["r"]]
    if "t" in data:
        assert df["timestamp"].dtype == np.int64
        assert df["timestamp"].tolist() == data["t"]


# --------------------------------------------------------------------------- hostile CSV

TOKENS = ["1", "2", "42", "-3", "007", "+5", "0", "-0", "a", "b c", " x ", "", "nan", "NaN",
          "inf", "-inf", "Infinity", "1e400", "99999999999999999999", "1.5", "é", "用户", "NULL",
          "true", '"', '""', '"a,b"', '"q', "1,2", "\x00", "\ufeff", "\\", "#", "\t", ";;"]
SEPS = [",", ";", "\t", "|", "::", " "]
HEADER_FIELDS = [["user_id", "item_id", "rating", "timestamp"], ["user_id", "item_id"],
                 ["item_id", "user_id", "rating"], ["user_id", "item_id", "item_id"],
                 ["userid", "item_id"], ["user_id", "item_id", "rating", "timestamp", ""],
                 ["\ufeffuser_id", "item_id"], ['"user_id"', '"item_id"', "rating"],
                 ["1", "2", "3", "4"], [""]]

fields = st.one_of(st.sampled_from(TOKENS),
                   st.text(st.characters(blacklist_categories=("Cs",)), max_size=4))
clean_fields = st.one_of(st.integers(-3, 60).map(str), st.floats(0, 5).map(str))
likely_fields = st.one_of(clean_fields, clean_fields, fields)
lines = st.builds(lambda fs, sep: sep.join(fs), st.lists(fields, max_size=6),
                  st.sampled_from(SEPS))


@st.composite
def hostile_files(draw) -> tuple[bytes, dict]:
    """Bytes of a file and the loader config; mostly almost-right files."""
    kind = draw(st.sampled_from(["near", "near", "near", "text", "bytes"]))
    sep = draw(st.sampled_from(SEPS))
    if kind == "bytes":
        head = draw(st.sampled_from([b"", b"user_id,item_id\n", b"\xef\xbb\xbfuser_id,item_id\n"]))
        content = head + draw(st.binary(max_size=120))
    else:
        if kind == "near":
            names = draw(st.sampled_from(HEADER_FIELDS))
            header = sep.join(names)
            width = st.integers(max(len(names) - 1, 0), len(names) + 1)
            clean = st.lists(clean_fields, min_size=len(names), max_size=len(names)).map(
                sep.join)
            row = st.builds(lambda fs, s: s.join(fs),
                            width.flatmap(lambda w: st.lists(likely_fields, min_size=w,
                                                             max_size=w)),
                            st.sampled_from([sep] * 8 + SEPS))
            body = draw(st.lists(st.one_of(*[clean] * 12, row, st.just(""), lines),
                                 max_size=12))
        else:
            header = draw(lines)
            body = draw(st.lists(lines, max_size=12))
        newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
        text = newline.join([header, *body]) + draw(st.sampled_from(["", newline]))
        content = text.encode(draw(st.sampled_from(["utf-8"] * 4 + ["utf-16"])),
                              "surrogatepass")
    cfg = draw(st.fixed_dictionaries({}, optional={
        "encoding": st.sampled_from(["utf-8"] * 4 + ["latin-1", "utf-16", "utf-9"]),
        "header": st.sampled_from([True, True, True, False]),
        "columns": st.sampled_from([
            {"rating": None, "timestamp": None},
            {"timestamp": None},
            {"user_id": "item_id", "item_id": "user_id"},
            {"user_id": "0", "item_id": "1", "rating": None, "timestamp": None},
        ]),
    }))
    cfg["sep"] = draw(st.sampled_from([sep] * 16 + [",", "((", "||", "\n"]))
    if kind == "near" and "columns" not in cfg:  # map what the header has
        cfg["columns"] = {c: c if c in names else None for c in ("rating", "timestamp")}
    return content, cfg


def quote_free_records(text: str, sep: str, header: bool) -> list[list[str]] | None:
    """The non-blank records of a file without quotes (None when quotes make it hard)."""
    if '"' in text or "\x00" in text:
        return None
    physical = re.split(r"\r\n|\r|\n", text)
    if physical and physical[-1] == "":
        physical.pop()
    records = [split_line(line, sep) for line in physical[1 if header else 0:]]
    return [r for r in records if any(f != "" for f in r)]


@fuzz(70)
@given(case=hostile_files())
def test_hostile_csv_loads_validly_or_fails_clearly(case):
    content, cfg = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.csv"
        path.write_bytes(content)
        result = load(path, **cfg)
    event(f"outcome: {type(result).__name__}")
    if isinstance(result, Exception):
        return
    columns = {"user_id": "user_id", "item_id": "item_id", "rating": "rating",
               "timestamp": "timestamp", **cfg.get("columns", {})}
    check_invariants(result, {c for c in ("rating", "timestamp") if columns[c]})
    # without quotes the file can be read independently: same rows, same ids
    sep, header = cfg["sep"], cfg.get("header", True)
    try:
        text = content.decode(cfg.get("encoding", "utf-8"))
    except UnicodeDecodeError:
        pytest.fail("the loader accepted bytes that do not decode")
    records = quote_free_records(text.removeprefix("\ufeff"), sep, header)
    if records is None:
        return
    event("loaded rows checked against an independent parse")
    df = result.interactions
    assert len(df) == len(records)
    if header:
        names = split_line(re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff"))[0], sep)
        positions = {c: names.index(columns[c]) for c in ("user_id", "item_id")}
    else:
        positions = {c: int(columns[c]) for c in ("user_id", "item_id")}
    for col, pos in positions.items():
        raw = [r[pos] for r in records]
        assert [str(v) for v in df[col]] == [str(v) for v in expected_ids(raw)]


# --------------------------------------------------------------------------- Parquet


def id_columns(n: int) -> st.SearchStrategy[pd.Series]:
    ints = st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)
    return st.one_of(
        ints.map(lambda v: pd.Series(v, dtype="int64")),
        st.lists(st.integers(0, 100), min_size=n, max_size=n).map(
            lambda v: pd.Series(v, dtype=np.random.default_rng(len(v)).choice(
                ["int8", "uint16", "int32"]))),
        st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n).map(
            lambda v: pd.Series(v, dtype="uint64")),
        st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-9, 9).map(float),
                 min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype="float64")),
        st.lists(st.integers(-9, 9) | st.none(), min_size=n, max_size=n).map(
            lambda v: pd.Series(v, dtype="Int64")),
        st.lists(st.booleans(), min_size=n, max_size=n).map(pd.Series),
        st.lists(st.text(max_size=4) | st.sampled_from(["5", "+5", "07", " "]),
                 min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype=object)),
        st.lists(st.sampled_from(["a", "b", "1"]), min_size=n, max_size=n).map(
            lambda v: pd.Series(pd.Categorical(v))),
        st.lists(st.integers(0, 2**40), min_size=n, max_size=n).map(
            lambda v: pd.Series(pd.to_datetime(v, unit="s"))),
    )


def numeric_columns(n: int) -> st.SearchStrategy[pd.Series]:
    return st.one_of(
        st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=n,
                 max_size=n).map(lambda v: pd.Series(v, dtype="float64")),
        st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n).map(
            lambda v: pd.Series(v, dtype="int64")),
        st.lists(st.booleans(), min_size=n, max_size=n).map(pd.Series),
        st.lists(st.sampled_from(["1", "2.5", "x", "", "inf"]), min_size=n, max_size=n).map(
            lambda v: pd.Series(v, dtype=object)),
        st.lists(st.integers(0, 2**40), min_size=n, max_size=n).map(
            lambda v: pd.Series(pd.to_datetime(v, unit="s"))),
        st.lists(st.integers(0, 2**40), min_size=n, max_size=n).map(
            lambda v: pd.Series(pd.to_datetime(v, unit="s", utc=True))),
    )


@st.composite
def parquet_frames(draw) -> pd.DataFrame:
    n = draw(st.integers(0, 8))
    frame = {"user_id": draw(id_columns(n)), "item_id": draw(id_columns(n))}
    if draw(st.booleans()):
        frame["rating"] = draw(numeric_columns(n))
    if draw(st.booleans()):
        frame["timestamp"] = draw(numeric_columns(n))
    return pd.DataFrame(frame)


def expected_parquet_ids(values: pd.Series) -> list | None:
    """What the loader must return for an id column, or None if it must refuse it."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    if values.isna().any() or values.dtype.kind in "bM":
        return None
    if values.dtype.kind in "iu":
        py = [int(v) for v in values]
        return py if all(INT64[0] <= v <= INT64[1] for v in py) else [str(v) for v in py]
    if values.dtype.kind == "f":
        ok = all(math.isfinite(v) and v == int(v) and INT64[0] <= int(v) < INT64[1]
                 for v in values)
        return [int(v) for v in values] if ok else None
    texts = [str(v) for v in values]
    if any(not t.strip() for t in texts):
        return None
    return expected_ids(texts)


@fuzz(40)
@given(frame=parquet_frames())
def test_parquet_with_odd_dtypes_loads_exactly_or_fails_clearly(frame):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ratings.parquet"
        try:
            frame.to_parquet(path)
        except Exception:
            assume(False)  # pyarrow cannot store it: nothing for the loader to read
        columns = {"rating": "rating" if "rating" in frame else None,
                   "timestamp": "timestamp" if "timestamp" in frame else None}
        result = load(path, columns=columns)
    event(f"outcome: {type(result).__name__}")
    want = {c: expected_parquet_ids(frame[c]) for c in ("user_id", "item_id")}
    if isinstance(result, Exception):
        if all(w is not None for w in want.values()):  # ids fine: the error is elsewhere
            assert set(frame.columns) & {"rating", "timestamp"}, result
        return
    check_invariants(result, {c for c, v in columns.items() if v})
    df = result.interactions
    assert len(df) == len(frame)
    for col in ("user_id", "item_id"):
        assert want[col] is not None, f"{col} {frame[col].dtype} should have been refused"
        assert df[col].tolist() == want[col]
    if len(frame) == 0:
        return
    if "rating" in frame:
        source = frame["rating"]
        assert source.dtype.kind in "fiub" or source.dtype == object
        np.testing.assert_array_equal(df["rating"].to_numpy(),
                                      pd.to_numeric(source).to_numpy(dtype="float64"))
    if "timestamp" in frame:
        source = frame["timestamp"]
        if source.dtype.kind == "M":
            source = source.dt.tz_localize(None) if source.dt.tz is None else \
                source.dt.tz_convert("UTC").dt.tz_localize(None)
            want_ts = source.astype("datetime64[s]").astype("int64").tolist()
            assert df["timestamp"].tolist() == want_ts
        else:
            np.testing.assert_array_equal(df["timestamp"].to_numpy(dtype="float64"),
                                          pd.to_numeric(source).to_numpy(dtype="float64"))
