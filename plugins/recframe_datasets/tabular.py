"""Read delimited text as string columns, with file-and-line errors on bad input.

Frames returned by :func:`read_delimited` are indexed by the 1-based line number
of each record in the file (header and blank lines counted), so every later check
can name the line of the first bad value. Line numbers assume one record per line
(no quoted fields spanning lines).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from recframe.api import DataError

_EXPECTED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
INT_PATTERN = r"[+-]?(?:0|[1-9][0-9]*)"
FLOAT_PATTERN = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_DELIMITERS = {",": "','", "\t": "tab ('\\t')", ";": "';'", "|": "'|'", "::": "'::'"}


def split_line(line: str, sep: str) -> list[str]:
    """Split one line the way the reader does (csv quoting for 1-char separators)."""
    line = line.rstrip("\r\n")
    if not line:
        return []
    if len(sep) == 1:
        return next(csv.reader([line], delimiter=sep))
    return re.split(sep, line)


def read_header(path: Path, sep: str, encoding: str = "utf-8") -> list[str]:
    """The fields of the first line of ``path`` (the header, or the first record)."""
    try:
        with open(path, encoding=encoding, newline="") as f:
            first = f.readline()
    except UnicodeDecodeError as err:
        raise DataError(_decode_message(path, err, encoding)) from None
    return split_line(first, sep)


def guess_delimiter(text: str) -> str:
    """Name the delimiter that seems to separate ``text``, or an empty string."""
    for sep, label in _DELIMITERS.items():
        if sep in text:
            return label
    return "whitespace" if re.search(r"\S\s+\S", text) else ""


def read_delimited(path: Path, *, sep: str, header: bool, encoding: str = "utf-8",
                   names: Sequence[str] | None = None) -> pd.DataFrame:
    """Read every column as strings (empty field -> missing), indexed by line number.

    Blank lines are dropped. A record with more fields than the first one raises a
    :class:`DataError` naming the file and line.
    """
    engine = "c" if len(sep) == 1 else "python"
    try:
        frame = pd.read_csv(
            path, sep=sep, header=0 if header else None, dtype=str, keep_default_na=False,
            na_values=[""], skip_blank_lines=False, engine=engine, encoding=encoding,
        )
    except pd.errors.ParserError as err:
        raise DataError(malformed_message(path, err)) from None
    except UnicodeDecodeError as err:
        raise DataError(_decode_message(path, err, encoding)) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty.") from None
    start = 2 if header else 1
    if names is not None:
        if len(names) != frame.shape[1]:
            raise DataError(
                f"{path}: line {start}: malformed row (Expected {len(names)} fields "
                f"[{', '.join(names)}] in line {start}, saw {frame.shape[1]}); "
                f"is this the right file and separator {sep!r}?"
            )
        frame.columns = list(names)
    frame.index = pd.RangeIndex(start, start + len(frame), name="line")
    blank = frame.isna().all(axis=1)
    return frame[~blank] if blank.any() else frame


def malformed_message(path: Path, err: Exception) -> str:
    """Rephrase a pandas tokenizer error so it names the file and the line."""
    text = str(err).strip()
    m = _EXPECTED.search(text)
    if m:
        expected, line, saw = m.groups()
        return (f"{path}: line {line}: malformed row (Expected {expected} fields in line "
                f"{line}, saw {saw}). Fix or remove that line; check dataset.sep.")
    return f"{path}: cannot parse the file: {text}"


def _decode_message(path: Path, err: UnicodeDecodeError, encoding: str) -> str:
    return (f"{path}: byte {err.start} cannot be decoded as {encoding} ({err.reason}); "
            f"set dataset.encoding (e.g. latin-1).")


def first_bad(mask: pd.Series) -> object:
    """Index label (line number) of the first True of ``mask``."""
    return mask.index[int(np.argmax(mask.to_numpy()))]


def describe(value: object) -> str:
    """A value for an error message: its repr, or 'an empty field'."""
    return "an empty field" if value is None or value is pd.NA or (
        isinstance(value, float) and np.isnan(value)) else repr(value)


def parse_numeric(values: pd.Series, *, path: Path, column: str, role: str,
                  unit: str = "line", hint: str = "") -> pd.Series:
    """Strings -> int64 when every value is an integer, else float64.

    Already-numeric input is cast the same way. The first empty or non-numeric value
    raises a :class:`DataError` naming ``column`` and its ``unit`` (line or row).
    """
    if pd.api.types.is_bool_dtype(values):
        values = values.astype("int64")
    if pd.api.types.is_numeric_dtype(values):
        bad = values.isna()
        if bad.any():
            where = first_bad(bad)
            raise DataError(f"{path}: {unit} {where}: {role} column {column!r} is empty. "
                            f"Fill or drop such rows.{hint}")
        return _as_int_if_integral(values)
    text = values.astype("string").str.strip()
    if text.str.fullmatch(INT_PATTERN).fillna(False).all():
        return text.astype("int64").rename(values.name)
    number = pd.to_numeric(text, errors="coerce").astype("float64")
    bad = number.isna()
    if bad.any():
        where = first_bad(bad)
        raw = values.loc[where]
        if describe(raw) == "an empty field":
            problem, hint = "is empty (too few fields in that row, or an empty field)", ""
        else:
            problem = f"has non-numeric value {raw!r}"
        raise DataError(f"{path}: {unit} {where}: {role} column {column!r} {problem}; "
                        f"every value must be a number.{hint}")
    return number.rename(values.name)


def _as_int_if_integral(values: pd.Series) -> pd.Series:
    if pd.api.types.is_integer_dtype(values):
        return values.astype("int64")
    arr = values.to_numpy(dtype="float64")
    return values.astype("float64") if not np.all(arr == np.round(arr)) else values.astype("int64")


def parse_ids(values: pd.Series, *, path: Path, column: str, role: str,
              unit: str = "line") -> pd.Series:
    """Ids kept as they are: int64 only when every value is a canonical integer
    (no sign-less leading zeros, so ``"007"`` stays a string), else strings.
    An empty id raises a :class:`DataError` naming the line."""
    bad = values.isna()
    if bad.any():
        where = first_bad(bad)
        raise DataError(f"{path}: {unit} {where}: {role} column {column!r} is empty "
                        f"(row with too few fields, or an empty id).")
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        return values
    text = values.astype("string")
    if text.str.fullmatch(INT_PATTERN).all():
        return text.astype("int64").rename(values.name)
    return values.astype("str")


def infer_column(values: pd.Series) -> pd.Series:
    """A feature column read as strings -> int64 / float64 when every non-empty value is
    a canonical number, otherwise strings (missing stays missing)."""
    present = values.dropna()
    if len(present) == 0:
        return values
    text = present.astype("string").str.strip()
    if text.str.fullmatch(INT_PATTERN).all():
        if len(present) == len(values):
            return values.astype("int64")
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if text.str.fullmatch(FLOAT_PATTERN).all() and not text.str.fullmatch(r"0\d+").any():
        return pd.to_numeric(values, errors="coerce").astype("float64")
    return values.astype("str")
