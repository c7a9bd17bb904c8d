"""Entry point of the built-in data sets: ``ml-100k``, ``csv``, ``seq_txt``, ``amazon-games``,
``synthetic`` and ``synthetic_long``, and the click logs ``ml-100k-ctr``, ``ctr_log`` and
``synthetic_ctr``.

Registering is cheap: the loader modules are imported only when a run loads data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recframe.api import DatasetSpec, hookimpl, lazy

if TYPE_CHECKING:
    from recframe.api import Dataset


def load_ml100k(cfg: Any) -> Dataset:
    """Load MovieLens 100K (see :func:`recframe_datasets.movielens.load_ml100k`)."""
    from .movielens import load_ml100k as load

    return load(cfg)


def load_csv(cfg: Any) -> Dataset:
    """Load a CSV/TSV/Parquet file (see :func:`recframe_datasets.csv_loader.load_csv`)."""
    from .csv_loader import load_csv as load

    return load(cfg)


def load_seq_txt(cfg: Any) -> Dataset:
    """Load a SASRec-format ``user item`` file (see :mod:`recframe_datasets.seq_txt`)."""
    from .seq_txt import load_seq_txt as load

    return load(cfg)


def load_amazon_games(cfg: Any) -> Dataset:
    """Load the SASRec paper's Amazon Games (see :mod:`recframe_datasets.amazon_games`)."""
    from .amazon_games import load_amazon_games as load

    return load(cfg)


def load_synthetic_long(cfg: Any) -> Dataset:
    """Generate long histories with planted sequential structure (see
    :func:`recframe_datasets.synthetic.load_synthetic_long`)."""
    from .synthetic import load_synthetic_long as load

    return load(cfg)


def load_synthetic(cfg: Any) -> Dataset:
    """Generate planted-structure data (see :func:`recframe_datasets.synthetic.load_synthetic`)."""
    from .synthetic import load_synthetic as load

    return load(cfg)


def load_ml100k_ctr(cfg: Any) -> Dataset:
    """Load MovieLens 100K as impressions (see :mod:`recframe_datasets.movielens_ctr`)."""
    from .movielens_ctr import load_ml100k_ctr as load

    return load(cfg)


def load_ctr_log(cfg: Any) -> Dataset:
    """Load a Criteo/Avazu-style click log (see :mod:`recframe_datasets.ctr_log`)."""
    from .ctr_log import load_ctr_log as load

    return load(cfg)


def load_criteo(cfg: Any) -> Dataset:
    """``ctr_log`` with the Criteo columns (see :data:`recframe_datasets.ctr_log.PRESETS`)."""
    from .ctr_log import load_preset

    return load_preset("criteo", cfg)


def load_avazu(cfg: Any) -> Dataset:
    """``ctr_log`` with the Avazu columns (see :data:`recframe_datasets.ctr_log.PRESETS`)."""
    from .ctr_log import load_preset

    return load_preset("avazu", cfg)


def load_synthetic_ctr(cfg: Any) -> Dataset:
    """Generate a planted click log (see :mod:`recframe_datasets.synthetic_ctr`)."""
    from .synthetic_ctr import load_synthetic_ctr as load

    return load(cfg)


@hookimpl
def recframe_register_datasets(registry: Any) -> None:
    """Register ``ml-100k``, ``csv``, the sequence files, ``synthetic*`` and the click logs."""
    registry.add(DatasetSpec(
        name="ml-100k", load=load_ml100k,
        description="MovieLens 100K ratings with movie genres and user demographics "
                    "(GroupLens layout; found via dataset.path, $RECFRAME_DATA_DIR, "
                    "the cache, or downloaded)",
    ))
    registry.add(DatasetSpec(
        name="csv", load=load_csv, scan=lazy("recframe_datasets.csv_loader:scan_csv"),
        description="Interactions from any CSV/TSV/Parquet file with a column mapping, "
                    "plus optional item/user feature files",
    ))
    registry.add(DatasetSpec(
        name="seq_txt", load=load_seq_txt,
        description="Sequences in the SASRec text format (`user item` per line, each user's "
                    "lines in time order; positions become timestamps), implicit",
    ))
    registry.add(DatasetSpec(
        name="amazon-games", load=load_amazon_games,
        description="Amazon Video Games as preprocessed for SASRec (Kang & McAuley, ICDM "
                    "2018): 287,107 interactions, 31,013 users, 23,715 items, short "
                    "histories; Video.txt via dataset.path or $RECFRAME_DATA_DIR (not "
                    "downloaded)",
    ))
    registry.add(DatasetSpec(
        name="synthetic_long", load=load_synthetic_long,
        description="synthetic with long histories (100-500 events per user) and a planted "
                    "sequential (item-to-successor) structure that sequence models can learn",
    ))
    registry.add(DatasetSpec(
        name="synthetic", load=load_synthetic,
        description="Deterministic generated data with planted latent clusters, power-law "
                    "popularity, timestamps, ratings and item/user features",
    ))
    registry.add(DatasetSpec(
        name="ml-100k-ctr", load=load_ml100k_ctr,
        description="MovieLens 100K as labeled impressions (label = rating >= threshold), "
                    "with user/item feature fields and a history sequence field",
    ))
    registry.add(DatasetSpec(
        name="ctr_log", load=load_ctr_log,
        description="A click log (Criteo/Avazu layout: one impression per line, a 0/1 label "
                    "column, numeric/categorical/multi-valued feature columns) from CSV/TSV/"
                    "Parquet",
    ))
    registry.add(DatasetSpec(
        name="criteo", load=load_criteo,
        description="Criteo display-ads click log (label, I1..I13 numeric, C1..C26 hashed "
                    "categoricals); ctr_log with Criteo's columns",
    ))
    registry.add(DatasetSpec(
        name="avazu", load=load_avazu,
        description="Avazu mobile-ads click log (click, hour -> hour_of_day/weekday, 21 "
                    "categoricals); ctr_log with Avazu's columns",
    ))
    registry.add(DatasetSpec(
        name="synthetic_ctr", load=load_synthetic_ctr,
        description="Deterministic generated click log from a planted logistic model "
                    "(first-order, low-rank pairwise and sequence effects) with its "
                    "Bayes-optimal AUC/LogLoss",
    ))
