"""Deterministic synthetic interactions with planted latent structure.

Users and items get latent vectors drawn around ``n_clusters`` shared centres.
User clusters have Zipf sizes (``cluster_skew``). Each user picks ``n_u`` distinct
items (``min_per_user`` plus a geometric number, mean ``mean_per_user``) by
Gumbel-top-k over

    standardised affinity(u, i) / temperature  -  popularity_exponent * log(rank_i)

i.e. sampling without replacement from the softmax of those logits: the latent
affinity dominates by default, popularity adds a power-law head. Ratings come from
affinity quantiles, timestamps increase per user, and item/user features are
derived from the latent structure (``category``, ``genre_*``, ``title`` tokens per
cluster; user ``segment`` and ``age``), so content models find signal too.

Long histories with sequential structure (``sequential_strength > 0``, the
``synthetic_long`` data set): each item gets ``n_successors`` successors in its own
cluster (Zipf weights). Each user's events are generated in time order: with
probability ``sequential_strength`` the next item is a successor of the previous one
(one the user has not had yet), else (or when every successor was had) the next item
of the user's Gumbel-perturbed utility ranking, as above. Items stay distinct per user.
``ratings: false`` drops the rating column (implicit data: every event is a positive,
``meta["implicit"]``, so the default ``binarize`` step keeps every event).
With the new settings at their defaults the output (and fingerprint) is unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from recframe.api import ITEM, RATING, TIMESTAMP, USER, ConfigError, Dataset

from .config import settings_from_cfg
from .fingerprint import params_fingerprint

GENERATOR_VERSION = 1
_START = 1_600_000_000  # 2020-09-13, Unix seconds
_DAY = 86_400
_CELLS_PER_CHUNK = 1 << 21  # users x items scores held at once
_RATING_QUANTILES = (0.06, 0.17, 0.44, 0.79)  # roughly MovieLens' 1..5 shares
_SYLLABLES = ("ka", "lo", "mi", "re", "tu", "sa", "no", "vi", "de", "po",
              "ra", "ze", "ku", "fe", "li", "mo", "ta", "gu", "be", "shi")
_WORDS_PER_CLUSTER = 6
_COMMON_WORDS = np.array(["the", "of", "night", "return", "story", "last", "city", "love",
                          "secret", "road", "house", "day"])


#: the largest n_users / n_items / n_clusters and dim a synthetic set may ask for
MAX_SIZE, MAX_DIM = 10_000_000, 4096

@dataclass(frozen=True)
class SyntheticParams:
    """Generator settings (the ``synthetic`` dataset config, minus ``name``)."""

    n_users: int = 500
    n_items: int = 300
    mean_per_user: float = 30.0
    min_per_user: int = 5
    dim: int = 8
    n_clusters: int = 8
    cluster_std: float = 0.5
    cluster_skew: float = 1.0
    temperature: float = 0.3
    popularity_exponent: float = 1.3
    n_genres: int = 8
    string_ids: bool = False
    seed: int = 0
    max_per_user: int = 0
    sequential_strength: float = 0.0
    n_successors: int = 4
    ratings: bool = True

    #: the config file documenting these settings (named in errors)
    CONFIG: ClassVar[str] = "conf/dataset/synthetic.yaml"
    #: the data set's name (``Dataset.name``)
    NAME: ClassVar[str] = "synthetic"
    #: settings added after version 1: left out of the fingerprint at their defaults,
    #: so data generated before they existed keeps its fingerprint
    LATER: ClassVar[tuple[str, ...]] = ("max_per_user", "sequential_strength", "n_successors",
                                        "ratings")

    @classmethod
    def from_cfg(cls, cfg: Any) -> SyntheticParams:
        """Read and validate the settings; unknown keys are a :class:`ConfigError`."""
        return settings_from_cfg(cls, cfg)

    def validate(self) -> None:
        """Raise a :class:`ConfigError` for impossible settings."""
        checks = [
            (self.n_users >= 1, "n_users must be >= 1"),
            (0 <= self.seed < 2**63, "seed must be a non-negative integer"),
            (self.n_items >= 2, "n_items must be >= 2"),
            (self.dim >= 1, "dim must be >= 1"),
            (self.n_clusters >= 1, "n_clusters must be >= 1"),
            (1 <= self.min_per_user <= self.n_items,
             f"min_per_user must be in [1, n_items={self.n_items}]"),
            (self.mean_per_user >= self.min_per_user,
             "mean_per_user must be >= min_per_user"),
            (self.temperature > 0, "temperature must be > 0"),
            (self.popularity_exponent >= 0, "popularity_exponent must be >= 0"),
            (self.cluster_std >= 0, "cluster_std must be >= 0"),
            (self.cluster_skew >= 0, "cluster_skew must be >= 0"),
            (0 <= self.n_genres <= self.dim, f"n_genres must be in [0, dim={self.dim}]"),
            (self.max_per_user == 0 or self.max_per_user >= self.min_per_user,
             "max_per_user must be 0 (no cap) or >= min_per_user"),
            (0.0 <= self.sequential_strength <= 1.0, "sequential_strength must be in [0, 1]"),
            (self.n_successors >= 1, "n_successors must be >= 1"),
            # sizes numpy can allocate (a generated set lives in memory)
            (self.n_users <= MAX_SIZE and self.n_items <= MAX_SIZE,
             f"n_users and n_items must be <= {MAX_SIZE:,}"),
            (self.dim <= MAX_DIM and self.n_clusters <= MAX_SIZE,
             f"dim must be <= {MAX_DIM} and n_clusters <= {MAX_SIZE:,}"),
            (self.mean_per_user <= MAX_SIZE and self.max_per_user <= MAX_SIZE,
             f"mean_per_user and max_per_user must be <= {MAX_SIZE:,}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{self.NAME} dataset: {message}; see {self.CONFIG}.")

    def settings(self) -> dict[str, Any]:
        """The settings recorded in ``meta`` and fingerprinted (see :attr:`LATER`)."""
        out = dataclasses.asdict(self)
        defaults = {f.name: f.default for f in dataclasses.fields(SyntheticParams)}
        for key in self.LATER:
            if out[key] == defaults[key]:
                del out[key]
        return out


@dataclass(frozen=True)
class SyntheticLongParams(SyntheticParams):
    """``synthetic_long``: 100-500 events per user and planted sequential structure."""

    n_users: int = 600
    n_items: int = 1000
    mean_per_user: float = 200.0
    min_per_user: int = 100
    max_per_user: int = 500
    popularity_exponent: float = 0.8
    sequential_strength: float = 0.7
    n_successors: int = 4
    ratings: bool = False

    CONFIG: ClassVar[str] = "conf/dataset/synthetic_long.yaml"
    NAME: ClassVar[str] = "synthetic_long"


def load_synthetic(cfg: Any) -> Dataset:
    """The ``synthetic`` dataset: :func:`generate` with settings from ``cfg``."""
    return generate(SyntheticParams.from_cfg(cfg))


def load_synthetic_long(cfg: Any) -> Dataset:
    """The ``synthetic_long`` dataset: :func:`generate` with long-history defaults."""
    return generate(SyntheticLongParams.from_cfg(cfg))


def generate(params: SyntheticParams) -> Dataset:
    """Generate the data set; the same ``params`` always give identical frames.

    ``meta`` holds ``fingerprint`` (md5 of the parameters and generator version),
    ``generator`` (the parameters), ``latent`` = ``(U, V)`` taste factors (float64;
    row ``i`` belongs to the ``i``-th user/item id, i.e. ids ``0..n-1`` or
    ``"u<i>"``/``"i<i>"``), ``affinity_mean``/``affinity_scale`` (standardisation of
    ``U @ V.T``), ``item_log_popularity`` and ``item_cluster``/``user_cluster``.
    :func:`true_utility` combines them into the logits users chose by.
    """
    p = params
    rng = np.random.default_rng(p.seed)
    centres = rng.normal(size=(p.n_clusters, p.dim))
    item_cluster = rng.integers(p.n_clusters, size=p.n_items)
    weights = (np.arange(p.n_clusters) + 1.0) ** -p.cluster_skew
    user_cluster = rng.choice(p.n_clusters, size=p.n_users, p=weights / weights.sum())
    V = centres[item_cluster] + p.cluster_std * rng.normal(size=(p.n_items, p.dim))
    U = centres[user_cluster] + p.cluster_std * rng.normal(size=(p.n_users, p.dim))
    mean, scale = affinity_moments(U, V)
    log_pop = -p.popularity_exponent * np.log(rng.permutation(p.n_items) + 1.0)

    extra = p.mean_per_user - p.min_per_user
    counts = p.min_per_user + rng.geometric(1.0 / (extra + 1.0), size=p.n_users) - 1
    counts = np.minimum(counts, p.max_per_user or p.n_items)
    counts = np.minimum(counts, p.n_items)
    if p.sequential_strength > 0:  # generated in time order
        successors = successor_table(item_cluster, p.n_successors, rng)
        users, items = sample_sequences(U, V, log_pop, counts, successors, mean=mean,
                                        scale=scale, temperature=p.temperature,
                                        strength=p.sequential_strength, rng=rng)
        affinity = (np.einsum("nd,nd->n", U[users], V[items]) - mean) / scale
    else:
        users, items = sample_items(U, V, log_pop, counts, mean=mean, scale=scale,
                                    temperature=p.temperature, rng=rng)
        affinity = (np.einsum("nd,nd->n", U[users], V[items]) - mean) / scale
        # Random order within each user
        order = np.lexsort((rng.random(len(users)), users))
        users, items, affinity = users[order], items[order], affinity[order]
    # then strictly increasing timestamps.
    timestamps = increasing_times(users, counts, rng)
    noisy = affinity + 0.3 * rng.normal(size=len(affinity))
    ratings = 1.0 + np.searchsorted(np.quantile(noisy, _RATING_QUANTILES), noisy)

    user_ids = _ids(p.n_users, "u", p.string_ids)
    item_ids = _ids(p.n_items, "i", p.string_ids)
    interactions = pd.DataFrame({
        USER: user_ids[users], ITEM: item_ids[items],
        RATING: ratings.astype("float64"), TIMESTAMP: timestamps,
    })
    if not p.ratings:  # implicit: every event a positive (binarize keeps every row)
        interactions = interactions.drop(columns=[RATING])
    item_frame = item_features(V, item_cluster, p, rng, index=pd.Index(item_ids, name=ITEM))
    user_frame = pd.DataFrame({
        "age": np.clip(np.rint(rng.normal(22.0 + 5.0 * (user_cluster % 8), 4.0)), 15, 80
                       ).astype("int64"),
        "segment": pd.array([f"s{c}" for c in range(p.n_clusters)], dtype="str")[user_cluster],
    }, index=pd.Index(user_ids, name=USER))
    settings = p.settings()
    meta_seq = {"item_successors": successors} if p.sequential_strength > 0 else {}
    return Dataset(
        interactions=interactions, items=item_frame, users=user_frame, name=p.NAME,
        source=f"synthetic(seed={p.seed})",
        meta={
            "fingerprint": params_fingerprint({**settings, "version": GENERATOR_VERSION}),
            "generator": settings,
            "latent": (U, V),
            "affinity_mean": mean,
            "affinity_scale": scale,
            "item_log_popularity": log_pop,
            "item_cluster": item_cluster,
            "user_cluster": user_cluster,
            **meta_seq,
            **({} if p.ratings else {"implicit": True}),
        },
    )


def affinity_moments(U: np.ndarray, V: np.ndarray) -> tuple[float, float]:
    """Exact mean and standard deviation of all entries of ``U @ V.T`` in O(d^2)."""
    mean = float(U.mean(axis=0) @ V.mean(axis=0))
    second = float(np.sum((U.T @ U) * (V.T @ V))) / (len(U) * len(V))
    return mean, float(np.sqrt(max(second - mean**2, 1e-12)))


def utility(U: np.ndarray, V: np.ndarray, log_pop: np.ndarray, *, mean: float,
            scale: float, temperature: float) -> np.ndarray:
    """Choice logits ``[len(U), len(V)]``: standardised affinity / temperature + log popularity."""
    return (U @ V.T - mean) / (scale * temperature) + log_pop


def true_utility(dataset: Dataset) -> np.ndarray:
    """The planted logits (users x items, rows/columns in id order) of a generated set."""
    meta = dataset.meta
    U, V = meta["latent"]
    return utility(U, V, meta["item_log_popularity"], mean=meta["affinity_mean"],
                   scale=meta["affinity_scale"], temperature=meta["generator"]["temperature"])


def sample_items(U: np.ndarray, V: np.ndarray, log_pop: np.ndarray, counts: np.ndarray, *,
                 mean: float, scale: float, temperature: float, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Gumbel-top-k per user: ``counts[u]`` distinct items, in chunks of users.

    Returns flat ``(user index, item index)`` arrays, grouped by user, each user's
    items in order of decreasing perturbed utility.
    """
    n_items = len(V)
    chunk = max(1, _CELLS_PER_CHUNK // n_items)
    users_out, items_out = [], []
    for start in range(0, len(U), chunk):
        stop = min(start + chunk, len(U))
        logits = utility(U[start:stop], V, log_pop, mean=mean, scale=scale,
                         temperature=temperature)
        keys = logits + rng.gumbel(size=logits.shape)
        k = int(counts[start:stop].max())
        top = (np.argpartition(-keys, k - 1, axis=1)[:, :k] if k < n_items
               else np.broadcast_to(np.arange(n_items), keys.shape))
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, 1), 1), 1)
        keep = np.arange(k) < counts[start:stop, None]
        users_out.append(np.broadcast_to(np.arange(start, stop)[:, None], top.shape)[keep])
        items_out.append(top[keep])
    return np.concatenate(users_out), np.concatenate(items_out)


def successor_table(item_cluster: np.ndarray, k: int, rng: np.random.Generator
                    ) -> np.ndarray:
    """``[n_items, k]`` successors of each item: distinct other items of its cluster
    (any other items when the cluster is too small), most likely first."""
    n_items = len(item_cluster)
    k = min(k, n_items - 1)
    out = np.empty((n_items, k), dtype=np.int64)
    for c in np.unique(item_cluster):
        members = np.flatnonzero(item_cluster == c)
        pool = members if len(members) > k else np.arange(n_items)
        keys = rng.random((len(members), len(pool)))
        keys[pool[None, :] == members[:, None]] = 2.0  # never the item itself
        out[members] = pool[np.argsort(keys, axis=1)[:, :k]]
    return out


def sample_sequences(U: np.ndarray, V: np.ndarray, log_pop: np.ndarray, counts: np.ndarray,
                     successors: np.ndarray, *, mean: float, scale: float,
                     temperature: float, strength: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``counts[u]`` distinct items per user, in time order (see the module docstring).

    Returns flat ``(user index, item index)`` arrays grouped by user, each user's
    items in the order they were chosen.
    """
    n_users, n_items = len(U), len(V)
    k = successors.shape[1]
    log_w = -np.log(np.arange(1, k + 1, dtype=np.float64))  # Zipf weights of successors
    ranking = np.empty((n_users, n_items), dtype=np.int32)  # affinity draws, in order
    chunk = max(1, _CELLS_PER_CHUNK // n_items)
    for start in range(0, n_users, chunk):
        stop = min(start + chunk, n_users)
        logits = utility(U[start:stop], V, log_pop, mean=mean, scale=scale,
                         temperature=temperature)
        ranking[start:stop] = np.argsort(-(logits + rng.gumbel(size=logits.shape)), axis=1)
    used = np.zeros((n_users, n_items), dtype=bool)
    pointer = np.zeros(n_users, dtype=np.int64)
    steps = int(counts.max())
    chosen = np.full((n_users, steps), -1, dtype=np.int64)
    prev = np.full(n_users, -1, dtype=np.int64)
    for t in range(steps):
        active = np.flatnonzero(counts > t)
        pick = np.full(len(active), -1, dtype=np.int64)
        if t > 0:
            follow = rng.random(len(active)) < strength
            cand = successors[prev[active]]  # [active, k]
            keys = log_w + rng.gumbel(size=cand.shape)
            keys[used[active[:, None], cand]] = -np.inf
            best = np.argmax(keys, axis=1)
            ok = follow & np.isfinite(keys[np.arange(len(active)), best])
            pick[ok] = cand[ok, best[ok]]
        rest = np.flatnonzero(pick < 0)
        while len(rest):  # next unused item of each user's affinity ranking
            u = active[rest]
            item = ranking[u, pointer[u]]
            fresh = ~used[u, item]
            pick[rest[fresh]] = item[fresh]
            pointer[u[~fresh]] += 1
            rest = rest[~fresh]
        used[active, pick] = True
        chosen[active, t] = pick
        prev[active] = pick
    keep = np.arange(steps) < counts[:, None]
    users = np.broadcast_to(np.arange(n_users)[:, None], chosen.shape)[keep]
    return users, chosen[keep]


def increasing_times(users: np.ndarray, counts: np.ndarray, rng: np.random.Generator
                     ) -> np.ndarray:
    """Int seconds, strictly increasing within each user (rows grouped by user)."""
    starts = _START + rng.integers(0, 365 * _DAY, size=len(counts))
    gaps = 1 + rng.exponential(_DAY / 2, size=len(users)).astype("int64")
    total = np.cumsum(gaps)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])  # first row of each user
    before = (total[first] - gaps[first])[users]
    return (starts[users] + total - before).astype("int64")


def item_features(V: np.ndarray, cluster: np.ndarray, p: SyntheticParams,
                  rng: np.random.Generator, index: pd.Index) -> pd.DataFrame:
    """``category`` (cluster), ``genre_<j>`` (latent dim j in its top 30%), ``title``."""
    frame = pd.DataFrame({
        "category": pd.array([f"c{c}" for c in range(p.n_clusters)], dtype="str")[cluster],
    }, index=index)
    for j in range(p.n_genres):
        frame[f"genre_{j}"] = (V[:, j] > np.quantile(V[:, j], 0.7)).astype("int64")
    frame["title"] = titles(cluster, p.n_clusters, rng)
    return frame


def titles(cluster: np.ndarray, n_clusters: int, rng: np.random.Generator) -> np.ndarray:
    """Three-word titles: two words of the item's cluster vocabulary, one common word
    (and, for one item in five, one word of a random other cluster)."""
    vocab = cluster_vocabulary(n_clusters)
    n = len(cluster)
    own = vocab[cluster[:, None], rng.integers(_WORDS_PER_CLUSTER, size=(n, 2))]
    common = _COMMON_WORDS[rng.integers(len(_COMMON_WORDS), size=n)]
    stray = vocab[rng.integers(n_clusters, size=n), rng.integers(_WORDS_PER_CLUSTER, size=n)]
    with_stray = rng.random(n) < 0.2
    first = pd.Series(own[:, 0]).str.capitalize()
    title = first + " " + common + " " + pd.Series(own[:, 1])
    title[with_stray] = title[with_stray] + " " + pd.Series(stray)[with_stray]
    return title.to_numpy()


def cluster_vocabulary(n_clusters: int) -> np.ndarray:
    """``[n_clusters, words]`` distinct made-up words (3 syllables each)."""
    n = len(_SYLLABLES)
    codes = (np.arange(n_clusters * _WORDS_PER_CLUSTER) * 7919 + 101) % n**3
    syl = np.array(_SYLLABLES)
    words = (pd.Series(syl[codes // n**2]) + syl[(codes // n) % n] + syl[codes % n])
    return words.to_numpy().reshape(n_clusters, _WORDS_PER_CLUSTER)


def _ids(n: int, prefix: str, as_strings: bool) -> np.ndarray:
    if not as_strings:
        return np.arange(n, dtype="int64")
    return (pd.Series([prefix] * n) + pd.Series(np.arange(n)).astype(str)).to_numpy()
