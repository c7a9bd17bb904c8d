"""The handle every out-of-core step gets: a DuckDB connection and relation helpers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: the original row position, carried through every step (ties are broken by it, as the
#: in-memory path breaks them by row order)
ROW = "_row"
#: the part label a splitter adds: 0 train, 1 valid, 2 test
PART = "_part"


def sql_double(x: float) -> str:
    """A float as a DuckDB DOUBLE literal that parses to exactly the same value
    (a bare ``0.1`` would be a DECIMAL, and decimal arithmetic rounds differently)."""
    return f"CAST({float(x)!r} AS DOUBLE)"


@dataclass
class SqlContext:
    """A DuckDB connection plus the bookkeeping steps need.

    Relations are named tables or views; a step reads the relation it is given and
    returns the name of its result, made with :meth:`view` (a query, evaluated
    lazily by the next one) or :meth:`table` (materialized, spilling to disk when
    it is larger than ``data.memory_limit``); both live in the database's catalog, so a
    step may also read them on a second cursor (``con.cursor()``) while it writes on
    ``con`` (an object ``register``-ed on ``con`` is not seen there: make a table of
    it). ``meta`` is the dataset's meta
    (``implicit`` etc.), ``source`` names the data in messages, ``seed`` is the run's.
    """

    con: Any
    source: str = "dataset"
    meta: dict[str, Any] = field(default_factory=dict)
    #: the feature frames ("items", "users") the engine holds in memory next to the
    #: relation (a step that rewrites ids must refuse when their frame is here)
    feature_frames: tuple[str, ...] = ()
    #: the random split's key source for a seed (``kept_row_keys``); None numbers the
    #: relation's own rows. An engine that splits the data over workers sets it to the
    #: numbering of all kept rows, so each worker draws the keys the whole data has.
    row_keys: Callable[[int], Any] | None = None
    _n: int = 0
    _functions: set[str] = field(default_factory=set)
    _counts: dict[str, int] = field(default_factory=dict)

    def _name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def view(self, sql: str, prefix: str = "v") -> str:
        """A view over ``sql``; returns its name."""
        name = self._name(prefix)
        self.con.execute(f"CREATE VIEW {name} AS {sql}")
        return name

    def table(self, sql: str, prefix: str = "t") -> str:
        """A table holding the result of ``sql``; returns its name."""
        name = self._name(prefix)
        self.con.execute(f"CREATE TABLE {name} AS {sql}")
        return name

    def columns(self, relation: str) -> list[str]:
        """The column names of ``relation``."""
        return [r[0] for r in self.con.execute(f"DESCRIBE {relation}").fetchall()]

    def types(self, relation: str) -> dict[str, str]:
        """Column name -> DuckDB type of ``relation``."""
        return {r[0]: r[1] for r in self.con.execute(f"DESCRIBE {relation}").fetchall()}

    def count(self, relation: str, where: str = "") -> int:
        """Rows of ``relation`` (matching ``where`` if given). Relations are never changed
        once made, so a relation's row count is counted once (a view re-runs its query)."""
        if not where and relation in self._counts:
            return self._counts[relation]
        cond = f" WHERE {where}" if where else ""
        n = int(self.con.execute(f"SELECT count(*) FROM {relation}{cond}").fetchall()[0][0])
        if not where:
            self._counts[relation] = n
        return n

    def scalar(self, sql: str) -> Any:
        """The single value ``sql`` returns."""
        rows = self.con.execute(sql).fetchall()
        return rows[0][0] if rows else None

    def function(self, name: str, fn: Callable[..., Any], params: list[str], returns: str
                 ) -> str:
        """Register a vectorized (Arrow) Python function once; returns its name."""
        if name not in self._functions:
            import duckdb

            self.con.create_function(
                name, fn, [duckdb.sqltype(p) for p in params],
                duckdb.sqltype(returns), type="arrow", side_effects=False)
            self._functions.add(name)
        return name

    def kept_row_keys(self, seed: int, relation: str) -> Any:
        """:class:`~recframe.data.ooc.keys.KeptRowKeys` of ``relation``'s rows (``_row``
        numbered in original order), or of all kept rows when ``row_keys`` is set."""
        from recframe.data.ooc.keys import KeptRowKeys
        from recframe.errors import DataError

        if self.row_keys is not None:
            return self.row_keys(seed)
        n = self.count(relation)
        n_source = int(self.scalar(f"SELECT coalesce(max({ROW}), -1) + 1 FROM {relation}"))
        rows = (batch.column(0).to_numpy() for batch in
                self.con.sql(f"SELECT {ROW} FROM {relation}").to_arrow_reader(1 << 20))
        keys = KeptRowKeys(seed, n_source, rows)
        if keys.n_kept != n:
            raise DataError(f"{self.source}: the {ROW} column of the preprocessed data "
                            f"repeats values ({keys.n_kept} distinct in {n} rows); a "
                            f"preprocessing step's out-of-core form must keep each "
                            f"original row at most once.")
        return keys
