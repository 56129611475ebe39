"""Adam that pulls every parameter back toward where its first step started.

Why: after the first ~1,000 steps of the paper's regression rows the one-step
meta-gradient is mostly noise, and Adam's normalized step turns noise into a random walk
of ϕ of about lr·√steps per coordinate, whatever the signal's size (BENCHMARKS.md, "ϕ
pulled back toward its warm start", which also has its screen: not better than Adam). A
decoupled pull toward the start (the L2-SP prior of fine-tuning, applied like AdamW's
decay) bounds that walk — for pure noise ϕ stays within about √(lr / (2·anchor)) of its
start per coordinate — while a meta-gradient of consistent sign can still move a
coordinate by about 1/anchor.
"""

from __future__ import annotations

import math

import torch


class AnchoredAdam(torch.optim.Adam):
    """``torch.optim.Adam``, then p ← p + lr·anchor·(p_start − p) for each stepped parameter.

    ``p_start`` is the value a parameter had before its first step with this optimizer
    (for a learned loss: the warm-started ϕ, since ``initialize`` uses its own optimizer);
    it lives in the optimizer's state, so ``state_dict`` and checkpoints carry it.
    ``anchor=0`` is Adam.
    """

    def __init__(self, params, lr: float = 1e-3, anchor: float = 1.0, **kwargs) -> None:
        if isinstance(anchor, bool) or not isinstance(anchor, int | float):
            raise TypeError(f"anchor must be a number ≥ 0; got {anchor!r}")
        if not (math.isfinite(anchor) and anchor >= 0):
            raise ValueError(f"anchor must be a finite number ≥ 0; got {anchor!r}")
        super().__init__(params, lr=lr, **kwargs)
        self.defaults["anchor"] = float(anchor)  # for groups loaded from a plain Adam's state
        for group in self.param_groups:
            group.setdefault("anchor", float(anchor))
            if not 0 <= group["lr"] * group["anchor"] <= 1:
                raise ValueError(
                    f"lr·anchor must lie in [0, 1] (the share of the way back to the start "
                    f"taken per step); got {group['lr']:g}·{group['anchor']:g}"
                )

    @torch.no_grad()
    def step(self, closure=None):
        # Every parameter without a start yet, gradient or not: a closure may make one.
        starts = {
            p: p.detach().clone()
            for group in self.param_groups
            for p in group["params"]
            if "anchor" not in self.state.get(p, ())
        }
        loss = super().step(closure)
        for group in self.param_groups:
            pull = group["lr"] * group.get("anchor", self.defaults["anchor"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if p in starts:
                    state["anchor"] = starts[p]
                if pull:
                    p.lerp_(state["anchor"], pull)
        return loss
