"""Build the optimizer of a gradient-trained model from the ``optim`` config group."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from recframe.errors import ConfigError, closest

# Devices on which torch's fused optimizer kernels exist for float parameters.
FUSED_DEVICES = ("cpu", "cuda")


def accepts_fused(optimizer_class: type) -> bool:
    """Whether ``optimizer_class(...)`` takes a ``fused`` argument (Adam, AdamW, SGD, ...)."""
    try:
        return "fused" in inspect.signature(optimizer_class).parameters
    except (TypeError, ValueError):  # pragma: no cover - classes without a signature
        return False


def fused_supported(params: Iterable[torch.nn.Parameter]) -> bool:
    """Whether every parameter is a dense float tensor on a device with fused kernels."""
    params = list(params)
    return bool(params) and all(
        p.is_floating_point() and p.layout == torch.strided and p.device.type in FUSED_DEVICES
        for p in params
    )


def build_optimizer(optim_cfg: DictConfig, params: Iterable[torch.nn.Parameter],
                    overrides: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Instantiate ``optim_cfg`` over ``params``.

    ``overrides`` (a model config's own tuned ``lr``/``weight_decay``) win over the
    group's keys. ``fused: auto`` (the default of ``conf/optim/adam.yaml``) turns on
    torch's fused kernel (one multi-tensor kernel per step instead of a chain of
    per-tensor ops) when the optimizer class has one and every parameter can use
    it, and leaves the argument out otherwise; ``true``/``false``/``null`` are
    passed as given.
    """
    params = list(params)
    cfg: dict[str, Any] = OmegaConf.to_container(optim_cfg, resolve=True)  # type: ignore[assignment]
    fused = cfg.get("fused")
    if fused == "auto":
        target = cfg.get("_target_")
        try:
            optimizer_class = get_class(str(target))
        except Exception as err:
            raise ConfigError(f"optim._target_ {target!r} is not an importable optimizer "
                              f"class ({err}); e.g. torch.optim.Adam") from err
        if accepts_fused(optimizer_class) and fused_supported(params):
            cfg["fused"] = True
        else:
            del cfg["fused"]
    elif fused is not None and not isinstance(fused, bool):
        raise ConfigError(f"optim.fused must be auto, true, false or null; got {fused!r}")
    return instantiate(cfg, params=params, **overrides)


def check_optimizer(optim_cfg: DictConfig | None, overrides: Mapping[str, Any]) -> None:
    """Build the configured optimizer over one dummy parameter, before any data is read,
    so a bad setting (``optim.lr=-1``, a misspelled argument, a non-optimizer class)
    is a :class:`ConfigError` naming the key, not a traceback after loading."""
    if not optim_cfg:
        return
    cfg: dict[str, Any] = OmegaConf.to_container(optim_cfg, resolve=True)  # type: ignore[assignment]
    target = str(cfg.get("_target_"))
    try:
        optimizer_class = get_class(target)
    except Exception as err:
        raise ConfigError(f"optim._target_ {target!r} is not an importable optimizer "
                          f"class ({err}); e.g. torch.optim.Adam") from err
    if not (isinstance(optimizer_class, type)
            and issubclass(optimizer_class, torch.optim.Optimizer)):
        raise ConfigError(f"optim._target_ {target!r} is not a torch.optim.Optimizer "
                          f"class; e.g. torch.optim.Adam")
    settings = {k: v for k, v in cfg.items() if not k.startswith("_") and k != "fused"}
    settings.update(overrides)
    try:
        known = [p for p in inspect.signature(optimizer_class).parameters if p != "params"]
    except (TypeError, ValueError):  # pragma: no cover - classes without a signature
        known = []
    for key in settings:
        if known and key not in known:
            hint = closest(key, known)
            raise ConfigError(
                f"optim.{key}: {target} has no argument {key!r}"
                + (f". Did you mean {hint!r} (optim.{hint})?" if hint else "")
                + f" Its arguments: {', '.join(known)}.")
    for key, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):
            raise ConfigError(f"optim.{key} must be a finite number, got {value!r}")
    lr = settings.get("lr")
    if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr <= 0:
        source = "model.lr" if "lr" in overrides else "optim.lr"
        raise ConfigError(f"{source} must be a positive learning rate, got {lr!r}; e.g. "
                          f"{source}=0.001")
    try:
        optimizer_class([torch.nn.Parameter(torch.zeros(1))], **settings)
    except (TypeError, ValueError, RuntimeError) as err:
        given = ", ".join(f"{k}={v!r}" for k, v in settings.items())
        raise ConfigError(f"optim: {target}({given}) is rejected by torch: {err}. Fix the "
                          f"optim.* (or model.lr / model.weight_decay) settings.") from None


#: optimizers of torch that take sparse gradients
SPARSE_OPTIMIZERS = (torch.optim.SparseAdam, torch.optim.Adagrad, torch.optim.SGD)


def check_sparse_gradients(optimizer: torch.optim.Optimizer, private: Any) -> None:
    """A model with sparse (row) gradients (``model.sparse_grad=true``) needs an
    optimizer that takes them and no DP-SGD (per-example gradients are dense): E929."""
    if private is not None:
        raise ConfigError("model.sparse_grad=true cannot run with privacy (DP-SGD clips and "
                          "noises dense per-example gradients); set model.sparse_grad=false.")
    if not isinstance(optimizer, SPARSE_OPTIMIZERS):
        raise ConfigError(
            f"model.sparse_grad=true makes sparse gradients, which "
            f"{type(optimizer).__name__} cannot apply; use optim=sparse_adam (or set "
            f"model.sparse_grad=false).")
