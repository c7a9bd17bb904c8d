"""The optimizer built from the ``optim`` group: ``fused: auto`` and its fallbacks."""

from __future__ import annotations

import pytest
import torch

from recframe.errors import ConfigError
from recframe.train.optim import build_optimizer, fused_supported


def _optim(compose, *overrides: str):
    return compose(*overrides).optim


def _params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.zeros(3))]


def test_default_adam_is_fused_on_cpu_and_takes_the_model_lr(compose):
    opt = build_optimizer(_optim(compose), _params(), {"lr": 0.123})
    assert isinstance(opt, torch.optim.Adam)
    assert opt.param_groups[0]["fused"] is True
    assert opt.param_groups[0]["lr"] == 0.123


def test_explicit_fused_values_are_passed_as_given(compose):
    assert build_optimizer(_optim(compose, "optim.fused=false"), _params(), {}
                           ).param_groups[0]["fused"] is False
    assert not build_optimizer(_optim(compose, "optim.fused=null"), _params(), {}
                               ).param_groups[0]["fused"]


def test_auto_is_dropped_for_optimizers_without_a_fused_kernel(compose):
    opt = build_optimizer(_optim(compose, "optim._target_=torch.optim.RMSprop"), _params(), {})
    assert isinstance(opt, torch.optim.RMSprop)


def test_auto_falls_back_when_a_parameter_cannot_use_the_fused_kernel():
    assert fused_supported(_params())
    assert not fused_supported([])
    assert not fused_supported([torch.nn.Parameter(torch.zeros(3, device="meta"))])


def test_bad_fused_value_names_the_key(compose):
    with pytest.raises(ConfigError, match="optim.fused"):
        build_optimizer(_optim(compose, "optim.fused=sometimes"), _params(), {})


def test_fused_and_per_tensor_adam_take_the_same_steps(compose):
    torch.manual_seed(0)
    grads = [torch.randn(4, 3), torch.randn(3)]
    results = []
    for fused in ("true", "false"):
        params = [torch.nn.Parameter(torch.ones(4, 3)), torch.nn.Parameter(torch.ones(3))]
        opt = build_optimizer(_optim(compose, f"optim.fused={fused}"), params, {"lr": 0.01})
        for _ in range(3):
            for p, g in zip(params, grads, strict=True):
                p.grad = g.clone()
            opt.step()
        results.append([p.detach().clone() for p in params])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b)
        assert not torch.equal(a, torch.ones_like(a))
