"""torch.optim's public API on a wrapper that owns no parameter groups (schedule_free's way).

The online meta-optimizers forward ``param_groups``, ``state``, ``defaults`` and
``zero_grad`` to the base optimizer, so learning-rate schedulers, loggers and checkpoint
code work with either object, and set up what ``Optimizer.__init__`` would for hooks, so
step / state_dict / load_state_dict hooks registered on the wrapper run.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from adaloss.inner import DifferentiableUpdate, check_group
from adaloss.modelcalls import parameter_names


class OptimizerLookAlike(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` whose groups and state are ``self.base_optimizer``'s."""

    base_optimizer: torch.optim.Optimizer
    model: nn.Module
    update: DifferentiableUpdate

    def _init_optimizer_api(self) -> None:
        """What ``Optimizer.__init__`` sets up for hooks and profiling, without param groups."""
        for hooks in (
            "_optimizer_step_pre_hooks",
            "_optimizer_step_post_hooks",
            "_optimizer_state_dict_pre_hooks",
            "_optimizer_state_dict_post_hooks",
            "_optimizer_load_state_dict_pre_hooks",
            "_optimizer_load_state_dict_post_hooks",
        ):
            if hooks not in self.__dict__:
                setattr(self, hooks, OrderedDict())
        self._patch_step_function()  # step pre/post hooks (torch's profile_hook_step)

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()  # torch's keeps only defaults/state/param_groups

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_optimizer_api()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the base optimizer; removed again if adaloss cannot train it."""
        self.base_optimizer.add_param_group(param_group)
        try:
            check_group(f"param_groups[{len(self.param_groups) - 1}]", self.param_groups[-1])
            parameter_names(self.model, self.update.params())
        except BaseException:
            self.base_optimizer.param_groups.pop()
            raise

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.base_optimizer.param_groups

    @property
    def state(self):
        return self.base_optimizer.state

    @property
    def defaults(self) -> dict[str, Any]:
        return self.base_optimizer.defaults

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)
