"""``anonymize``: replace raw ids by a keyed hash (HMAC-SHA256), consistently everywhere.

The secret key comes only from the environment (``key_env``, default
``RECFRAME_ANON_KEY``). A key written in the config is refused: the resolved
config is recorded in ``results.json`` and by Hydra in ``.hydra/config.yaml``
and ``.hydra/overrides.yaml``, so a key there would be written to disk next to
the results it protects.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from recframe.api import ITEM, USER, ConfigError, DataError, Dataset
from recframe_preprocess._params import _get, check_keys, get_bool, get_int, log, where

DEFAULT_KEY_ENV = "RECFRAME_ANON_KEY"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MIN_LENGTH, MAX_LENGTH = 8, 64


def hash_ids(values: Any, key: bytes, kind: str, length: int = 16) -> np.ndarray:
    """Keyed hashes of ``values`` as an object array of ``length`` hex characters.

    Each distinct value is hashed once (``HMAC-SHA256(key, kind + NUL + str(value))``)
    and the result mapped back through factorize codes; missing values stay missing.
    ``kind`` ("user"/"item") separates the two id spaces: user 5 and item 5 differ.
    """
    codes, uniques = pd.factorize(pd.Series(values, copy=False), use_na_sentinel=True)
    prefix = f"{kind}\x00".encode()
    hashed = np.array(
        [hmac.new(key, prefix + str(v).encode("utf-8"), hashlib.sha256).hexdigest()[:length]
         for v in uniques],
        dtype=object,
    )
    if len(set(hashed)) != len(hashed):
        raise DataError(
            f"{where('anonymize')}: two different {kind} ids hash to the same "
            f"{length}-character id; raise `length` (at most {MAX_LENGTH})."
        )
    out = np.empty(len(codes), dtype=object)
    present = codes >= 0
    out[present] = hashed[codes[present]]
    out[~present] = None
    return out


def _rekey_frame(frame: pd.DataFrame | None, column: str, key: bytes, kind: str,
                 length: int) -> pd.DataFrame | None:
    """Hash the id of a feature frame, whether it is the index or a column."""
    if frame is None:
        return None
    if column in frame.columns:
        return frame.assign(**{column: hash_ids(frame[column], key, kind, length)})
    index = pd.Index(hash_ids(frame.index.to_numpy(), key, kind, length),
                     name=frame.index.name)
    out = frame.copy(deep=False)
    out.index = index
    return out


def read_key(key_env: str) -> bytes:
    """The secret from the environment variable ``key_env``; ConfigError if unset/empty."""
    value = os.environ.get(key_env, "")
    if not value:
        raise ConfigError(
            f"{where('anonymize')}: no key: the environment variable {key_env} is not set "
            f"(or empty). Set it to a long random secret before running, e.g. "
            f"`export {key_env}=$(openssl rand -hex 32)`, or name another variable with "
            f"key_env. The key is read only from the environment and never written."
        )
    return value.encode("utf-8")


def anonymize_settings(cfg: Any) -> tuple[str, bool, bool, int, bytes]:
    """``(key_env, users, items, length, key)`` of an ``anonymize`` step, checked; the
    key read from the environment (ConfigError before any data is read)."""
    if cfg is not None and hasattr(cfg, "keys") and "key" in cfg:
        raise ConfigError(
            f"{where('anonymize')}: do not put the key in the config: the resolved config "
            f"is saved in results.json and .hydra/, so the secret would be written next to "
            f"the anonymized results. Remove `key` and put the secret in the environment "
            f"variable named by key_env (default {DEFAULT_KEY_ENV}), e.g. "
            f"`export {DEFAULT_KEY_ENV}=$(openssl rand -hex 32)`."
        )
    check_keys(cfg, "anonymize", ("key_env", "items", "users", "length"))
    key_env = _get(cfg, "key_env", DEFAULT_KEY_ENV, "anonymize")
    if not isinstance(key_env, str) or not _ENV_NAME.fullmatch(key_env):
        raise ConfigError(
            f"{where('anonymize')}: key_env must be the name of an environment variable "
            f"(letters, digits, _), got a {type(key_env).__name__}."
        )
    items = get_bool(cfg, "items", False, "anonymize")
    users = get_bool(cfg, "users", True, "anonymize")
    length = get_int(cfg, "length", 16, "anonymize", minimum=MIN_LENGTH)
    if length > MAX_LENGTH:
        raise ConfigError(
            f"{where('anonymize')}: length must be an integer in [{MIN_LENGTH}, {MAX_LENGTH}], "
            f"got {length}"
        )
    if not (users or items):
        raise ConfigError(f"{where('anonymize')}: users and items are both false: "
                          f"nothing to anonymize; remove the step or set one to true.")
    key = read_key(key_env)  # fail in resolve(), before data is loaded
    return key_env, users, items, length, key


def build_anonymize(cfg: Any) -> Any:
    """Replace user ids (and, with ``items: true``, item ids) by keyed hashes.

    ``id -> HMAC-SHA256(key, "user" NUL str(id))`` truncated to ``length`` hex
    characters, in the interactions and in the ``users`` (``items``) feature
    frame alike, so features still join. The same key gives the same ids in
    every run; another key gives unrelated ids. Row order and index are kept.

    Parameters:
        key_env (str, default RECFRAME_ANON_KEY): the environment variable holding
            the secret key. A ``key`` in the config is refused (it would be
            recorded in results.json and .hydra/).
        items (bool, default false): also hash item ids.
        users (bool, default true): hash user ids.
        length (int in [8, 64], default 16): hex characters kept of the digest.

    Fails with :class:`ConfigError` when the variable is unset, before any data is read.
    Only ids are replaced: feature columns (age, zip code, ...) and timestamps can
    still single people out; drop them too if that matters.
    """
    key_env, users, items, length, key = anonymize_settings(cfg)

    def anonymize(ds: Dataset) -> Dataset:
        df = ds.interactions
        changes: dict[str, Any] = {}
        new_cols: dict[str, Any] = {}
        if users:
            new_cols[USER] = hash_ids(df[USER], key, "user", length)
            changes["users"] = _rekey_frame(ds.users, USER, key, "user", length)
        if items:
            new_cols[ITEM] = hash_ids(df[ITEM], key, "item", length)
            changes["items"] = _rekey_frame(ds.items, ITEM, key, "item", length)
        out = df.assign(**new_cols)
        log.info(
            "preprocess 'anonymize': hashed %s ids with the key from $%s; dropped 0 rows",
            " and ".join(k for k, on in (("user", users), ("item", items)) if on), key_env,
        )
        return replace(ds, interactions=out, **changes)

    return anonymize
