"""Entry point of the sequential-recommendation plugin: ``gru4rec``, ``sasrec``, ``bert4rec``,
``hstu``."""

from __future__ import annotations

from recframe.api import ModelSpec, hookimpl, lazy

_NEEDS = frozenset({"timestamps"})


@hookimpl
def recframe_register_models(registry) -> None:
    registry.add(ModelSpec(
        name="gru4rec",
        build=lazy("recframe_seq.gru4rec:build_gru4rec"),
        family="rnn", needs=_NEEDS,
        description="GRU4Rec, GRU next-item model with full softmax cross-entropy "
                    "(Hidasi et al., ICLR 2016; Hidasi & Karatzoglou, CIKM 2018)",
    ))
    registry.add(ModelSpec(
        name="sasrec",
        build=lazy("recframe_seq.sasrec:build_sasrec"),
        family="transformer", needs=_NEEDS,
        description="SASRec, causal self-attention next-item model, full or sampled "
                    "softmax loss (Kang & McAuley, ICDM 2018)",
    ))
    registry.add(ModelSpec(
        name="bert4rec",
        build=lazy("recframe_seq.bert4rec:build_bert4rec"),
        family="transformer", needs=_NEEDS,
        description="BERT4Rec, bidirectional transformer with a masked-item (Cloze) "
                    "objective (Sun et al., CIKM 2019)",
    ))
    registry.add(ModelSpec(
        name="hstu",
        build=lazy("recframe_seq.hstu:build_hstu"),
        family="transformer", needs=_NEEDS,
        description="HSTU, sequential transducer with pointwise SiLU attention and gating, "
                    "sampled softmax (Zhai et al., ICML 2024)",
    ))
