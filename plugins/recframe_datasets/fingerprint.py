"""Content fingerprints of raw inputs, recorded in ``Dataset.meta['fingerprint']``: the
core's helpers (``recframe.api.fingerprint_files`` and friends) under the names this
plugin's loaders use."""

from __future__ import annotations

from recframe.api import combine_digests as combine
from recframe.api import file_digests, md5_file
from recframe.api import fingerprint_params as params_fingerprint

__all__ = ["combine", "file_digests", "md5_file", "params_fingerprint"]
