"""Sequence models (recframe_seq): gru4rec, sasrec, bert4rec, hstu."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from recframe.api import ConfigError, DataInfo
from recframe.plugin.manager import default_manager
from recframe.runner import run_experiment

MODELS = ("gru4rec", "sasrec", "bert4rec", "hstu")
LOO = "split=leave_one_out"
# Small and fast on the planted synthetic data (FAST in conftest: 300 users x 200 items).
SMALL = ["model.max_seq_len=50", "model.embedding_dim=32"]
EXTRA = {
    "gru4rec": ["trainer.max_epochs=15", "model.hidden_size=64", "model.lr=0.003"],
    "sasrec": ["trainer.max_epochs=8", "model.lr=0.003"],
    "bert4rec": ["trainer.max_epochs=15", "model.lr=0.003", "model.mask_prob=0.3"],
    "hstu": ["trainer.max_epochs=8", "model.lr=0.003"],
}


@pytest.fixture(scope="module")
def pop_ndcg(tmp_path_factory) -> float:
    from recframe.hydra_app import compose_config
    from tests.conftest import FAST

    cfg = compose_config([*FAST, "model=pop", LOO])
    return run_experiment(cfg, tmp_path_factory.mktemp("pop"))["metrics"]["test"]["ndcg@10"]


@pytest.mark.parametrize("name", MODELS)
def test_model_beats_pop_on_planted_structure(name, compose, tmp_path, pop_ndcg):
    cfg = compose(f"model={name}", LOO, *SMALL, *EXTRA[name])
    results = run_experiment(cfg, tmp_path)
    ndcg = results["metrics"]["test"]["ndcg@10"]
    assert ndcg > 1.1 * pop_ndcg, (name, ndcg, pop_ndcg)


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_prefix_rows_train_a_model_that_beats_pop(name, compose, tmp_path, pop_ndcg):
    """``train_rows=prefixes`` (one row per target, last position trained): one epoch
    already holds every training item as a target, so two epochs suffice here."""
    cfg = compose(f"model={name}", LOO, *SMALL, *EXTRA[name], "model.train_rows=prefixes",
                  "trainer.max_epochs=2")
    results = run_experiment(cfg, tmp_path)
    ndcg = results["metrics"]["test"]["ndcg@10"]
    assert ndcg > 1.1 * pop_ndcg, (name, ndcg, pop_ndcg)


def _build(name: str, n_items: int = 30, **params):
    spec = default_manager().models.get(name)
    return spec.build(DataInfo(n_users=5, n_items=n_items, has_timestamps=True),
                      OmegaConf.create({"name": name, **params}))


def _context(n_items: int, max_len: int) -> dict[str, torch.Tensor]:
    seq = torch.full((4, max_len), -1, dtype=torch.long)
    seq[0, -3:] = torch.tensor([1, 2, 3])
    seq[1] = torch.arange(max_len) % n_items  # full row
    seq[2, -1] = 7  # one item; row 3 stays empty
    return {"seq": seq, "seen_rows": torch.zeros(0, dtype=torch.long),
            "seen_cols": torch.zeros(0, dtype=torch.long)}


@pytest.mark.parametrize("name", MODELS)
def test_score_shape_dtype_finite(name):
    torch.manual_seed(0)
    model = _build(name, max_seq_len=8, embedding_dim=16)
    model.eval()
    assert model.max_seq_len == 8 and "timestamps" in model.needs
    scores = model.score(torch.arange(4), _context(30, 8))
    assert scores.shape == (4, 30) and scores.dtype == torch.float32
    assert torch.isfinite(scores).all()


@pytest.mark.parametrize("name", MODELS)
def test_leading_padding_does_not_change_scores(name):
    """Positions count from the most recent item: extra padding on the left is a no-op."""
    torch.manual_seed(0)
    model = _build(name, max_seq_len=12, embedding_dim=16).eval()
    ctx = _context(30, 8)
    wide = dict(ctx, seq=torch.cat([torch.full((4, 4), -1), ctx["seq"]], dim=1))
    with torch.no_grad():
        torch.testing.assert_close(model.score(torch.arange(4), ctx),
                                   model.score(torch.arange(4), wide))


@pytest.mark.parametrize("name", ["gru4rec", "sasrec", "hstu"])
def test_causal_models_do_not_see_the_future(name):
    """The output at position t depends only on items up to t (next-item training)."""
    torch.manual_seed(0)
    model = _build(name, max_seq_len=6, embedding_dim=16).eval()
    seq = torch.tensor([[-1, 3, 4, 5, 6, 7]])
    changed = torch.tensor([[-1, 3, 4, 5, 6, 9]])
    with torch.no_grad():
        a = model.encode(seq)
        b = model.encode(changed)
    a, b = (x[0] if isinstance(x, tuple) else x for x in (a, b))
    # gru4rec left-aligns: real items at 0..4; sasrec keeps them at 1..5
    prefix = slice(0, 4) if name == "gru4rec" else slice(1, 5)
    torch.testing.assert_close(a[:, prefix], b[:, prefix])
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("name", MODELS)
def test_loss_is_finite_and_reproducible(name):
    model = _build(name, max_seq_len=6, embedding_dim=16)
    seq = torch.tensor([[-1, -1, -1, -1, 2, 5, 1], [0, 1, 2, 3, 4, 5, 6], [-1] * 5 + [8, 9]])
    losses = []
    for _ in range(2):
        torch.manual_seed(3)
        losses.append(model.loss({"users": torch.arange(3), "seq": seq}))
    assert torch.isfinite(losses[0]) and losses[0] == losses[1]
    losses[0].backward()


def test_hstu_last_position_encoding_equals_the_full_forward():
    torch.manual_seed(0)
    model = _build("hstu", max_seq_len=8, embedding_dim=16, num_blocks=3).eval()
    seq = _context(30, 8)["seq"][:3]  # padded rows, a full row, a single item
    with torch.no_grad():
        full = model.encode(seq)[:, -1]
        torch.testing.assert_close(model.encode_last(seq), full)
    assert not torch.allclose(full[0], full[1])


@pytest.mark.parametrize("name", ["sasrec", "bert4rec", "hstu"])
def test_a_sequence_longer_than_the_positions_is_refused(name):
    model = _build(name, max_seq_len=4, embedding_dim=16)
    with pytest.raises(ConfigError, match="has only model.max_seq_len=4 positions"):
        model.encode(torch.arange(6).unsqueeze(0))


def test_hstu_attention_is_pointwise_silu_normalised_by_the_length():
    """One head, no bias: the block's attention is SiLU(q k^T) / n on allowed pairs."""
    from torch.nn import functional as F

    from recframe_seq.hstu import HSTUBlock

    torch.manual_seed(0)
    block = HSTUBlock(4, 1, 3, 2, max_seq_len=5, dropout=0.0, attn_dropout=0.0).eval()
    x = torch.randn(1, 3, 4)
    idx = torch.arange(3)
    distance = (idx.unsqueeze(1) - idx.unsqueeze(0)).clamp(min=0)
    mask = (idx.unsqueeze(1) >= idx.unsqueeze(0)).float().view(1, 1, 3, 3) / 5
    with torch.no_grad():
        got = block(x, mask, distance)
        u, v, q, k = F.silu(block.uvqk(F.layer_norm(x, (4,))))[0].split([2, 2, 3, 3], -1)
        rows = []
        for i in range(3):  # a loop over queries and keys
            o = sum(F.silu(q[i] @ k[j]) / 5 * v[j] for j in range(i + 1))
            rows.append(x[0, i] + block.out(u[i] * F.layer_norm(o, (2,))))
    torch.testing.assert_close(got[0], torch.stack(rows))


@pytest.mark.parametrize("params", [
    {"loss": "sampled", "num_negatives": 5},
    {"loss": "sampled", "num_negatives": 5, "sampling": "popularity", "logq_correction": True},
])
def test_sasrec_sampled_softmax(params):
    torch.manual_seed(0)
    model = _build("sasrec", max_seq_len=6, embedding_dim=16, **params)
    seq = torch.tensor([[-1, -1, -1, -1, 2, 5, 1], [0, 1, 2, 3, 4, 5, 6]])
    loss = model.loss({"users": torch.arange(2), "seq": seq})
    assert torch.isfinite(loss) and loss > 0
    loss.backward()


BAD = [
    ("gru4rec", "max_seq_len", 0), ("gru4rec", "hidden_size", "big"),
    ("gru4rec", "dropout", 1.0), ("gru4rec", "tied", "yes"), ("gru4rec", "num_layers", 0),
    ("sasrec", "num_heads", 3), ("sasrec", "loss", "bce"), ("sasrec", "num_negatives", 0),
    ("sasrec", "sampling", "zipf"), ("sasrec", "embedding_dim", 1.5),
    ("sasrec", "init_std", 0), ("bert4rec", "mask_prob", 0.0), ("bert4rec", "mask_prob", 1.5),
    ("bert4rec", "max_seq_len", 1), ("bert4rec", "num_blocks", -1),
]


@pytest.mark.parametrize(("name", "key", "value"), BAD)
def test_bad_parameters_name_the_key(name, key, value):
    with pytest.raises(ConfigError, match=rf"model\.{key}"):
        _build(name, **{key: value})


def test_sliding_windows_make_every_training_item_a_target_once():
    import numpy as np

    from recframe.train.batches import SequenceBatches, left_padded

    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 40, size=30)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    items = rng.integers(0, 1000, size=int(indptr[-1]))
    positions = np.arange(len(items))  # distinct ids: track positions, not item ids
    max_len = 7
    windows = SequenceBatches((indptr, positions), batch_size=1000, max_len=max_len, seed=0,
                              rows="windows")
    seq = windows[0]["seq"].numpy()
    users = windows[0]["users"].numpy()
    assert seq.shape[1] == max_len + 1
    targets = seq[:, 1:][(seq[:, 1:] >= 0) & (seq[:, :-1] >= 0)]  # items with a predecessor
    expected = np.concatenate([np.arange(indptr[u] + 1, indptr[u + 1])
                               for u in range(len(lengths)) if lengths[u] >= 2])
    assert np.array_equal(np.sort(targets), np.sort(expected))  # each target exactly once
    for row, user in zip(seq, users, strict=True):  # windows hold consecutive items of one user
        real = row[row >= 0]
        assert len(real) >= 2 and np.all(np.diff(real) == 1)
        assert indptr[user] <= real[0] and real[-1] < indptr[user + 1]
    latest = SequenceBatches((indptr, items), batch_size=1000, max_len=max_len, seed=0)
    batch = latest[0]
    assert np.array_equal(batch["seq"].numpy(),
                          left_padded((indptr, items), batch["users"].numpy(), max_len + 1))


def test_prefix_rows_end_at_every_target_once_with_the_items_before_it():
    import numpy as np

    from recframe.train.batches import SequenceBatches

    rng = np.random.default_rng(1)
    lengths = rng.integers(0, 30, size=25)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    positions = np.arange(int(indptr[-1]))  # distinct ids: each entry is its own position
    max_len = 6
    prefixes = SequenceBatches((indptr, positions), batch_size=10_000, max_len=max_len, seed=0,
                               rows="prefixes")
    seq, users = prefixes[0]["seq"].numpy(), prefixes[0]["users"].numpy()
    expected = np.concatenate([np.arange(indptr[u] + 1, indptr[u + 1])
                               for u in range(len(lengths)) if lengths[u] >= 2])
    assert len(seq) == len(expected)
    assert np.array_equal(np.sort(seq[:, -1]), expected)  # each target ends one row
    for row, user in zip(seq, users, strict=True):
        target, real = row[-1], row[row >= 0]
        first = max(indptr[user], target - max_len)  # up to max_len items before it
        assert np.array_equal(real, np.arange(first, target + 1))
    with pytest.raises(ValueError, match="recent, windows, prefixes"):
        SequenceBatches((indptr, positions), batch_size=8, max_len=max_len, seed=0, rows="all")


@pytest.mark.parametrize(("overrides", "rows"), [
    (["model.train_rows=windows"], "windows"),
    (["model.train_rows=prefixes"], "prefixes"),
    (["+model.sliding_windows=true"], "windows"),  # the old key still works
])
def test_train_rows_config_reaches_the_training_batches(compose, overrides, rows):
    from recframe.runner import build_experiment

    exp = build_experiment(compose("model=sasrec", "split=leave_one_out", "dataset=synthetic",
                                   "dataset.n_users=60", "dataset.n_items=40",
                                   "model.max_seq_len=5", *overrides))
    batches = exp.datamodule.make_train_set()
    assert exp.model.train_rows == rows and batches.rows == rows
    assert len(batches.users) > len(set(batches.users.tolist()))


@pytest.mark.parametrize(("name", "params", "match"), [
    ("bert4rec", {"train_rows": "prefixes"},
     r"model\.train_rows must be 'auto' or one of recent, windows, got"),
    ("sasrec", {"train_rows": "all"},
     r"must be 'auto' or one of recent, windows, prefixes, got 'all'"),
    ("sasrec", {"train_rows": "prefixes", "sliding_windows": True}, r"contradicts"),
    ("gru4rec", {"sliding_windows": "yes"}, r"model\.sliding_windows must be true or false"),
])
def test_bad_train_rows_are_named(name, params, match):
    with pytest.raises(ConfigError, match=match):
        _build(name, **params)


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_prefix_rows_train_the_last_position_only(name):
    """With ``train_rows: prefixes`` the loss is the cross-entropy of each row's last
    item given the items before it: equal to the full-sequence loss restricted to the
    last position, and blind to earlier targets."""
    torch.manual_seed(0)
    model = _build(name, max_seq_len=6, train_rows="prefixes").eval()
    seq = torch.tensor([[-1, -1, 3, 5, 7, 2, 9], [1, 2, 3, 4, 5, 6, 8], [-1, -1, -1, -1, -1, 4, 0]])
    loss = model.loss({"seq": seq})
    last = model.score(torch.arange(3), {"seq": seq[:, :-1]})  # logits after the inputs
    expected = torch.nn.functional.cross_entropy(last, seq[:, -1])
    torch.testing.assert_close(loss, expected)
    changed = seq.clone()
    changed[:, -2] = torch.tensor([1, 1, 1])  # an input changes: so does the loss
    assert not torch.isclose(model.loss({"seq": changed}), loss)


@pytest.mark.parametrize(("model", "kwargs"), [
    ("sasrec", {"num_heads": 1}), ("sasrec", {"num_heads": 2}),
    ("bert4rec", {"pre_ln": True}), ("bert4rec", {"pre_ln": False}),
])
@pytest.mark.parametrize("padded", [True, False])
def test_last_position_encoding_equals_the_full_forward(model, kwargs, padded):
    """Scoring computes the last block for the last position only; it must match, with
    padding (a per-row mask) and without (SASRec: the plain causal kernel)."""
    from recframe_seq.bert4rec import BERT4Rec
    from recframe_seq.sasrec import SASRec

    torch.manual_seed(0)
    cls = SASRec if model == "sasrec" else BERT4Rec
    kwargs = dict(kwargs)
    heads = kwargs.pop("num_heads", 2)
    m = cls(40, max_seq_len=12, embedding_dim=16, num_blocks=3, num_heads=heads, ffn_dim=32,
            **kwargs).eval()
    seq = torch.randint(0, 40, (9, 12))
    if padded:
        seq[0, :5] = -1
        seq[1, :11] = -1  # a single item
    inputs = seq if model == "sasrec" else m.tokens(seq)
    with torch.no_grad():
        full = m.encode(inputs)[:, -1]
        last = m.encode_last(inputs)
    assert last.shape == full.shape
    torch.testing.assert_close(last, full, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(full[0], full[2])  # rows differ: the check is not vacuous


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("mask_kind", ["none", "causal", "per_row", "shared"])
def test_plain_block_equals_the_encoder_layer(norm_first, heads, mask_kind):
    from recframe_seq._common import _plain_block, _plain_block_applies
    from recframe_seq.sasrec import causal_padding_mask

    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(16, heads, 32, 0.3, activation="gelu",
                                             batch_first=True, norm_first=norm_first).eval()
    x = torch.randn(5, 7, 16)
    pad = torch.zeros(5, 7, dtype=torch.bool)
    pad[0, :3] = True
    causal = torch.ones(7, 7, dtype=torch.bool).triu(1)
    mask, is_causal = {"none": (None, False), "causal": (causal, True),
                       "per_row": (causal_padding_mask(pad, heads), False),
                       "shared": (torch.rand(7, 7) < 0.3, False)}[mask_kind]
    if mask is not None and mask_kind == "shared":
        mask.fill_diagonal_(False)
    assert _plain_block_applies(layer, mask, None)
    with torch.no_grad():
        want = layer(x, src_mask=mask, is_causal=is_causal)
        got = _plain_block(layer, x, mask, is_causal)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert not _plain_block_applies(layer.train(), mask, None)  # dropout: the module's path
    assert not _plain_block_applies(layer.eval(), mask, pad)
    assert not _plain_block_applies(layer, torch.zeros(7, 7), None)  # additive float mask


def test_row_chunks_cover_every_row_once_in_order():
    from recframe_seq._common import row_chunks

    rows = torch.arange(30).reshape(10, 3)
    parts = row_chunks(rows, max_cells=7)
    assert [len(p) for p in parts] == [2, 2, 2, 2, 2]
    assert torch.equal(torch.cat(parts), rows)
    assert [len(p) for p in row_chunks(rows, max_cells=2)] == [1] * 10  # at least one row
    assert len(row_chunks(rows, max_cells=30)) == 1


def test_row_chunks_default_scales_with_threads():
    from recframe_seq._common import CHUNK_TOKENS_PER_THREAD, row_chunks

    rows = torch.zeros(1000, 50, dtype=torch.long)
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            per_chunk = CHUNK_TOKENS_PER_THREAD * threads // 50
            assert [len(p) for p in row_chunks(rows)][0] == per_chunk
    finally:
        torch.set_num_threads(before)
