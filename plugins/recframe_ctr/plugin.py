"""Entry point of the CTR plugin: registers lr, fm, deepfm, dcnv2, autoint and din."""

from __future__ import annotations

from recframe.api import ModelSpec, hookimpl, lazy

#: the data must be encoded into typed fields (recframe.data.fields) for these models
NEEDS = frozenset({"fields"})
_DESCRIPTIONS = (
    ("lr", "Logistic regression over typed fields (first-order CTR baseline)"),
    ("fm", "Factorization machine over typed fields, O(kn) pairwise term (Rendle, ICDM 2010)"),
    ("deepfm", "DeepFM: FM plus an MLP on a shared field embedding (Guo et al., IJCAI 2017)"),
    ("dcnv2", "DCN-V2: full-rank cross network with a parallel or stacked MLP "
              "(Wang et al., WWW 2021)"),
    ("autoint", "AutoInt: multi-head self-attention over field embeddings with residuals "
                "(Song et al., CIKM 2019)"),
    ("din", "DIN: target attention over the behaviour sequence, then an MLP "
            "(Zhou et al., KDD 2018); needs a sequence field"),
)

#: (name, builder, description); each builder is recframe_ctr.<name>.build_<name>, imported
#: when a run builds that model
MODELS = tuple((name, lazy(f"recframe_ctr.{name}:build_{name}"), description)
               for name, description in _DESCRIPTIONS)


@hookimpl
def recframe_register_models(registry) -> None:
    for name, build, description in MODELS:
        registry.add(ModelSpec(name=name, build=build, family="ctr", needs=NEEDS,
                               description=description))
