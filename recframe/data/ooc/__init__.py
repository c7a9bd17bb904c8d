"""The out-of-core data path: DuckDB queries over Parquet, encoded Parquet shards.

``data.engine=duckdb`` (or ``auto`` above ``data.ooc_threshold_gib`` of input files)
runs load -> preprocess -> split -> encode as DuckDB queries that spill to disk, and
writes the encoded split as Parquet shards plus id maps and a ``manifest.json``
(written last). See docs/scaling.md.
"""

from recframe.data.ooc.context import SqlContext, sql_double
from recframe.data.ooc.keys import KeptRowKeys, random_keys
from recframe.data.ooc.scan import ScanSource

__all__ = ["KeptRowKeys", "ScanSource", "SqlContext", "random_keys", "sql_double"]
