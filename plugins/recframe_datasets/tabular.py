"""Read delimited text as string columns, with file-and-line errors on bad input.

Frames returned by :func:`read_delimited` are indexed by the 1-based line number
of each record in the file (header and blank lines counted), so every later check
can name the line of the first bad value. Line numbers assume one record per line
(no quoted fields spanning lines).
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from recframe.api import DataError

_EXPECTED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
INT_PATTERN = r"[+-]?(?:0|[1-9][0-9]*)"
# Ids: only the canonical spelling of an integer (no sign on 0, no "+", no leading zeros),
# so two different strings never become the same integer id ("5"/"+5", "0"/"-0", "7"/"07").
ID_INT_PATTERN = r"0|-?[1-9][0-9]*"
INT64_MAX = np.iinfo(np.int64).max
FLOAT_PATTERN = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_DELIMITERS = {",": "','", "\t": "tab ('\\t')", ";": "';'", "|": "'|'", "::": "'::'"}


def split_line(line: str, sep: str) -> list[str]:
    """Split one line the way the reader does: csv quoting for 1-char separators; for a
    regex separator (several characters) pandas' python engine first strips whitespace
    at both ends of the line, and there is no quoting."""
    line = line.rstrip("\r\n")
    if len(sep) > 1:
        line = line.strip()
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
    except UnicodeError as err:  # UnicodeDecodeError, or e.g. utf-16 without a BOM
        raise DataError(_decode_message(path, err, encoding)) from None
    # pandas drops a UTF-8/16 byte-order mark (files saved by Excel); so must the header check
    return split_line(first.removeprefix("\ufeff"), sep)


def guess_delimiter(text: str) -> str:
    """Name the delimiter that seems to separate ``text``, or an empty string."""
    for sep, label in _DELIMITERS.items():
        if sep in text:
            return label
    return "whitespace" if re.search(r"\S\s+\S", text) else ""


def read_delimited(path: Path, *, sep: str, header: bool, encoding: str = "utf-8",
                   names: Sequence[str] | None = None) -> pd.DataFrame:
    """Read every column as strings (empty field -> missing), indexed by line number.

    Blank lines (and lines of empty fields only) are dropped. A record with more
    fields than the header (or the first record) raises a :class:`DataError` naming
    the file and line, except empty trailing fields (``1,2,``) when the first data
    row has them too (an export that ends every row with the delimiter).
    """
    engine = "c" if len(sep) == 1 else "python"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            # index_col=False: pandas must never turn the first column into the index
            # when data rows have more fields than the header (that shifts every column)
            frame = pd.read_csv(
                path, sep=sep, header=0 if header else None, dtype=str,
                keep_default_na=False, na_values=[""], skip_blank_lines=False,
                engine=engine, encoding=encoding, index_col=False,
            )
    except pd.errors.ParserError as err:
        raise DataError(malformed_message(path, err)) from None
    except UnicodeError as err:  # UnicodeDecodeError, or e.g. utf-16 without a BOM
        raise DataError(_decode_message(path, err, encoding)) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty.") from None
    except (ValueError, csv.Error) as err:  # e.g. NUL bytes, odd quoting in the python engine
        raise DataError(f"{path}: cannot parse the file: {err}") from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        _check_extra_fields(path, sep, encoding, frame.shape[1], header)
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


def _check_extra_fields(path: Path, sep: str, encoding: str, n_fields: int,
                        header: bool) -> None:
    """Raise for the first record with more non-empty fields than ``n_fields``.

    Records whose extra fields are all empty (a trailing delimiter) are accepted.
    """
    only_empty_extras = False
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        for number, line in enumerate(f, start=1):
            if header and number == 1:
                continue
            try:
                fields = split_line(line, sep)
            except csv.Error:
                continue
            if len(fields) <= n_fields:
                continue
            if any(x.strip() for x in fields[n_fields:]):
                raise DataError(
                    f"{path}: line {number}: malformed row (Expected {n_fields} fields in "
                    f"line {number}, saw {len(fields)}). Fix or remove that line; check "
                    f"dataset.sep and that the header names every column."
                )
            only_empty_extras = True
    if only_empty_extras:
        return
    raise DataError(  # extra fields the line scan cannot place (quoted newlines)
        f"{path}: some rows have more fields than the header ({n_fields}). Fix those rows; "
        f"check dataset.sep and that the header names every column."
    )


def malformed_message(path: Path, err: Exception) -> str:
    """Rephrase a pandas tokenizer error so it names the file and the line."""
    text = str(err).strip()
    m = _EXPECTED.search(text)
    if m:
        expected, line, saw = m.groups()
        return (f"{path}: line {line}: malformed row (Expected {expected} fields in line "
                f"{line}, saw {saw}). Fix or remove that line; check dataset.sep.")
    return f"{path}: cannot parse the file: {text}"


def _decode_message(path: Path, err: UnicodeError, encoding: str) -> str:
    if isinstance(err, UnicodeDecodeError):
        return (f"{path}: byte {err.start} cannot be decoded as {encoding} ({err.reason}); "
                f"set dataset.encoding (e.g. latin-1).")
    return f"{path}: cannot be decoded as {encoding} ({err}); set dataset.encoding."


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
    if values.dtype.kind in "mMc" or pd.api.types.is_datetime64_any_dtype(values):
        raise DataError(f"{path}: {role} column {column!r} has dtype {values.dtype}; every "
                        f"value must be a number.{hint}")
    if pd.api.types.is_numeric_dtype(values):
        bad = values.isna()
        if bad.any():
            where = first_bad(bad)
            raise DataError(f"{path}: {unit} {where}: {role} column {column!r} is empty. "
                            f"Fill or drop such rows.{hint}")
        return _as_int_if_integral(values)
    text = values.astype("string").str.strip()
    if text.str.fullmatch(INT_PATTERN).fillna(False).all():
        try:
            return text.astype("int64").rename(values.name)
        except (OverflowError, ValueError):  # beyond int64: read them as floats below
            pass
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
    """int64 when every value is an integer that fits; otherwise float64 (inf/NaN kept, so
    later checks see them: casting inf or 1e30 to int64 would make up a number)."""
    if pd.api.types.is_integer_dtype(values):
        arr = values.to_numpy()
        if arr.dtype.kind == "u" and len(arr) and arr.max() > INT64_MAX:
            return values.astype("float64")
        return values.astype("int64")
    arr = values.to_numpy(dtype="float64", na_value=np.nan)
    if np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)) and \
            np.all(np.abs(arr) < 2.0**63):
        return values.astype("int64")
    return values.astype("float64")


def parse_ids(values: pd.Series, *, path: Path, column: str, role: str,
              unit: str = "line") -> pd.Series:
    """Ids as int64 or strings, nothing else.

    Text: int64 only when every value is a canonical integer that fits in int64
    (``"007"``, ``"+5"`` and ``"-0"`` keep the column as strings, so two different
    spellings never merge into one id), else the strings as found. Typed columns
    (Parquet): integers -> int64 (unsigned beyond int64 -> strings), floats -> int64
    when every value is a whole number, categoricals -> their values. An empty id,
    a fractional/infinite float id, or a boolean/date column raises a
    :class:`DataError` naming the file and the line (row).
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    bad = values.isna()
    if bad.any():
        where = first_bad(bad)
        raise DataError(f"{path}: {unit} {where}: {role} column {column!r} is empty "
                        f"(row with too few fields, or an empty id).")
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or dtype.kind in "mMcV" or \
            pd.api.types.is_datetime64_any_dtype(dtype):
        raise DataError(f"{path}: {role} column {column!r} has dtype {dtype}; ids must be "
                        f"integers or strings. Is `dataset.columns` mapping the right column?")
    if pd.api.types.is_integer_dtype(dtype):
        arr = values.to_numpy()
        if arr.dtype.kind == "u" and len(arr) and arr.max() > INT64_MAX:
            return values.astype("str")
        return values.astype("int64")
    if pd.api.types.is_float_dtype(dtype):
        arr = values.to_numpy(dtype="float64")
        bad = ~(np.isfinite(arr) & (arr == np.round(arr)) & (np.abs(arr) < 2.0**63))
        if bad.any():
            where = first_bad(pd.Series(bad, index=values.index))
            raise DataError(f"{path}: {unit} {where}: {role} column {column!r} holds the "
                            f"number {float(values.loc[where])!r}; ids must be integers or "
                            f"strings.")
        return values.astype("int64")
    text = values.astype("string")
    blank = text.str.strip() == ""
    if blank.any():
        where = first_bad(blank)
        raise DataError(f"{path}: {unit} {where}: {role} column {column!r} is empty "
                        f"(an empty or blank id).")
    if text.str.fullmatch(ID_INT_PATTERN).all():
        try:
            return text.astype("int64").rename(values.name)
        except (OverflowError, ValueError):  # beyond int64: keep them as strings
            pass
    return text.astype("str").rename(values.name)


def infer_column(values: pd.Series) -> pd.Series:
    """A feature column read as strings -> int64 / float64 when every non-empty value is
    a canonical number, otherwise strings (missing stays missing)."""
    present = values.dropna()
    if len(present) == 0:
        return values
    text = present.astype("string").str.strip()
    if text.str.fullmatch(INT_PATTERN).all():
        if len(present) == len(values):
            try:
                return text.astype("int64").reindex(values.index).rename(values.name)
            except (OverflowError, ValueError):  # beyond int64
                pass
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if text.str.fullmatch(FLOAT_PATTERN).all() and not text.str.fullmatch(r"0\d+").any():
        return pd.to_numeric(values, errors="coerce").astype("float64")
    return values.astype("str")
