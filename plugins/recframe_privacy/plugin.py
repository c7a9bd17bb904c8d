"""Entry point module of recframe_privacy: registers the ``mia_auc`` audit metric."""

from __future__ import annotations

from recframe.api import MetricSpec, hookimpl, lazy


@hookimpl
def recframe_register_metrics(registry):  # type: ignore[no-untyped-def]
    registry.add(MetricSpec(
        name="mia_auc",
        fn=lazy("recframe_privacy.mia:mia_auc"),
        kind="audit",
        higher_is_better=False,
        description="Membership-inference AUC (score-threshold attack, per user) of "
                    "training users vs users held out before training "
                    "(privacy.audit_users); 0.5 = the attack learns nothing. 95% bootstrap "
                    "CI in results.json privacy.audit.",
    ))
