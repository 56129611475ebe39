"""Saving and loading an online meta-optimizer whole (issue 13).

``state_dict`` gathers the base and meta optimizers, ϕ, the counters and the loss scale, with
torch.optim's checkpoint hooks around it; ``load_state_dict`` checks the whole checkpoint
(``adaloss.checkpoint``) before anything changes and puts everything back if loading fails
half-way. Subclasses add their own entries through the three hooks below.
"""

from __future__ import annotations

from typing import Any

import torch

from adaloss.checkpoint import check_state_dict
from adaloss.transaction import Transaction


class Checkpointing:
    """The checkpoint half of ``OnlineMetaOptimizer``; it reads the attributes that class sets
    (``base_optimizer``, ``meta_params``, ``meta_optimizer``, ``steps``, ``skipped_steps``,
    ``scaling`` and torch.optim's hook dictionaries)."""

    def state_dict(self) -> dict[str, Any]:
        for hook in self._optimizer_state_dict_pre_hooks.values():
            hook(self)
        state_dict = {
            "base_optimizer": self.base_optimizer.state_dict(),
            "meta_params": [p.detach().clone() for p in self.meta_params],
            "meta_optimizer": self.meta_optimizer.state_dict() if self.meta_optimizer else None,
            "steps": self.steps,
            "skipped_steps": self.skipped_steps,
            "grad_scale": self.scaling.state_dict(),
            **self._extra_state(),
        }
        for hook in self._optimizer_state_dict_post_hooks.values():
            state_dict = hook(self, state_dict) or state_dict
        return state_dict

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state_dict: dict[str, Any]) -> None:
        """Hook: the subclass's own entries of a checkpoint."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a checkpoint whole or not at all: everything is checked before anything changes.

        A mismatch (another model's shapes, another optimizer type, a missing entry)
        raises ``ValueError`` naming the first one found.
        """
        state_dict = dict(state_dict)
        for hook in self._optimizer_load_state_dict_pre_hooks.values():
            state_dict = hook(self, state_dict) or state_dict
        self._check_state_dict(state_dict)
        base, meta = self.base_optimizer, self.meta_optimizer
        # torch's load_state_dict replaces its state and param_groups objects: keep the old ones.
        saved_base = (base.state, base.param_groups)
        saved_meta = (meta.state, meta.param_groups) if meta is not None else None
        with Transaction(self) as tx:
            tx.save_meta()
            try:
                base.load_state_dict(state_dict["base_optimizer"])
                with torch.no_grad():
                    for p, s in zip(self.meta_params, state_dict["meta_params"], strict=True):
                        p.copy_(s)
                if meta is not None:
                    meta.load_state_dict(state_dict["meta_optimizer"])
                self.steps = state_dict["steps"]
                self.skipped_steps = state_dict["skipped_steps"]
                self._load_extra_state(state_dict)
                self.scaling.load_state_dict(
                    state_dict.get("grad_scale", state_dict.get("loss_scale"))  # older name
                )
                self._after_meta_step()
            except BaseException:
                base.state, base.param_groups = saved_base
                if meta is not None:
                    meta.state, meta.param_groups = saved_meta
                raise
        for hook in self._optimizer_load_state_dict_post_hooks.values():
            hook(self)

    def _check_state_dict(self, state_dict: dict[str, Any]) -> None:
        check_state_dict(state_dict, self.base_optimizer, self.meta_params, self.meta_optimizer)
