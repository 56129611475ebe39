"""Checkpoint validation: a whole adaloss checkpoint is checked before anything loads.

torch's ``Optimizer.load_state_dict`` checks only the number of groups and parameters, so a
checkpoint of a wider model or of another optimizer type would load and fail later; these
checks name the first mismatch instead (issue 13).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from adaloss.inner import HYPERPARAMETERS, STATE_KEYS, check_group


def check_state_dict(
    state_dict: dict[str, Any],
    base_optimizer: torch.optim.Optimizer,
    meta_params: list[torch.Tensor],
    meta_optimizer: torch.optim.Optimizer | None,
) -> None:
    """Raise ValueError at the first part of ``state_dict`` that does not fit this wrapper."""
    keys = ("base_optimizer", "meta_params", "meta_optimizer", "steps", "skipped_steps")
    missing = [k for k in keys if k not in state_dict]
    if missing:
        raise ValueError(f"state_dict lacks {missing[0]!r} (an adaloss checkpoint has {keys})")
    kind = type(base_optimizer)
    check_optimizer_state(
        "base_optimizer",
        base_optimizer,
        state_dict["base_optimizer"],
        HYPERPARAMETERS.get(kind, ()),
        STATE_KEYS.get(kind),
    )
    for i, group in enumerate(state_dict["base_optimizer"]["param_groups"]):
        try:
            check_group(f"param_groups[{i}]", {**group, "params": []})
        except TypeError as err:
            raise ValueError(f"state_dict['base_optimizer']: {err}") from None
    saved = state_dict["meta_params"]
    expected = [tuple(p.shape) for p in meta_params]
    got = [tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__ for s in saved]
    if got != expected:
        # learn_lr's a is one scalar after ϕ: a checkpoint of the other setting differs by it
        hint = (
            " (learn_lr adds one scalar meta-parameter after ϕ's: was it saved with the other "
            "learn_lr?)"
            if [*got, ()] == expected or got == [*expected, ()]
            else " (was it saved with another learned loss? On a Regression the default recipe "
            "builds MonotoneLossNetwork, earlier versions LossNetwork: pass the one it was "
            "saved with as loss=)"
        )
        raise ValueError(
            f"state_dict's meta-parameters do not match: expected shapes {expected}, got {got}"
            + hint
        )
    if (meta_optimizer is None) != (state_dict["meta_optimizer"] is None):
        has = "has" if state_dict["meta_optimizer"] is not None else "has no"
        raise ValueError(
            f"state_dict {has} meta-optimizer state but this wrapper "
            f"{'has no meta optimizer' if meta_optimizer is None else 'has one'}"
        )
    if meta_optimizer is not None:
        check_optimizer_state(
            "meta_optimizer", meta_optimizer, state_dict["meta_optimizer"], (), None
        )
    for counter in ("steps", "skipped_steps"):
        value = state_dict[counter]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"state_dict[{counter!r}] must be an integer >= 0, got {value!r}")
    check_grad_scale(state_dict.get("grad_scale", state_dict.get("loss_scale")))


def check_grad_scale(state: Any) -> None:
    """Raise ValueError unless ``state`` is None or ``LossScaling.state_dict()``'s form."""
    if state is None:  # checkpoints from before loss scaling have none
        return
    where = "state_dict['grad_scale']"
    if not isinstance(state, dict) or not {"scale", "good_steps", "overflows"} <= state.keys():
        raise ValueError(f"{where} must be a dict with 'scale', 'good_steps' and 'overflows'")
    scale = state["scale"]
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale < math.inf:
        raise ValueError(f"{where}['scale'] must be a finite number > 0, got {scale!r}")
    for counter in ("good_steps", "overflows"):
        value = state[counter]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{where}[{counter!r}] must be an integer >= 0, got {value!r}")


def check_optimizer_state(
    what: str,
    optimizer: torch.optim.Optimizer,
    saved: Any,
    options: tuple[str, ...],
    state_keys: tuple[str, ...] | None,
) -> None:
    """Raise ValueError unless torch's ``optimizer.load_state_dict(saved)`` fits ``optimizer``.

    torch checks only the number of groups and of parameters per group; this also checks
    the options the update reads (``options``), the state's keys and every state tensor's
    shape against its parameter, so a checkpoint of a wider model or of another
    optimizer type is refused before anything is loaded.
    """
    where = f"state_dict[{what!r}]"
    if not isinstance(saved, dict) or not {"state", "param_groups"} <= saved.keys():
        raise ValueError(f"{where} is not an optimizer state_dict (needs 'state', 'param_groups')")
    groups, saved_groups = optimizer.param_groups, saved["param_groups"]
    if len(groups) != len(saved_groups):
        raise ValueError(
            f"{where} has {len(saved_groups)} parameter group(s); this optimizer has {len(groups)}"
        )
    by_index: dict[Any, torch.Tensor] = {}
    for i, (group, saved_group) in enumerate(zip(groups, saved_groups, strict=True)):
        if len(group["params"]) != len(saved_group["params"]):
            raise ValueError(
                f"{where}: param_groups[{i}] has {len(saved_group['params'])} parameter(s); "
                f"this optimizer's has {len(group['params'])}"
            )
        for option in options:
            if option not in saved_group:
                raise ValueError(
                    f"{where}: param_groups[{i}] lacks {option!r}, which "
                    f"{type(optimizer).__name__} needs (a checkpoint of another optimizer type?)"
                )
        flag = "decoupled_weight_decay"
        mine, theirs = group.get(flag), saved_group.get(flag)
        if mine is not None and theirs is not None and mine != theirs:
            raise ValueError(
                f"{where}: param_groups[{i}] has decoupled_weight_decay={theirs}, this "
                f"optimizer {mine} (Adam and AdamW checkpoints do not mix)"
            )
        by_index.update(zip(saved_group["params"], group["params"], strict=True))
    for index, entry in saved["state"].items():
        if index not in by_index:
            raise ValueError(f"{where} has state for parameter {index!r}, which no group holds")
        p = by_index[index]
        for key, value in entry.items():
            if state_keys is not None and key not in state_keys:
                raise ValueError(
                    f"{where}: state of parameter {index} has {key!r}; "
                    f"{type(optimizer).__name__} keeps {state_keys} (another optimizer type?)"
                )
            if not isinstance(value, torch.Tensor) or value.dim() == 0 or key == "step":
                continue
            if value.shape != p.shape:
                raise ValueError(
                    f"{where}: state {key!r} of parameter {index} has shape "
                    f"{tuple(value.shape)}, the parameter {tuple(p.shape)} (another model?)"
                )
