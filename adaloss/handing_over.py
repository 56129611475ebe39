"""What ``MetaLossOptimizer`` does with the hand-over's parts (``adaloss.handover``): the
twin's step after every step, the checks (the user's ``check``/``finish``, or ``step``'s own
with ``check_every``) and the hand-over itself.

A mixin, because each of these reads and writes the optimizer's model, base optimizer and
step count: it expects ``model``, ``base_optimizer``, ``task``, ``replicas``, ``update``,
``steps``, ``_grad_scale``, and the hand-over's state — ``twin``, ``window``,
``handover_rule``, ``handed_over_at`` and ``split`` — which ``MetaLossOptimizer.__init__`` sets.
"""

from __future__ import annotations

import warnings

import torch

from adaloss.batches import check_batch
from adaloss.handover import (
    CheckResult,
    PlainTwin,
    ValidationWindow,
    check_error,
    check_saved_handover,
)
from adaloss.online import StepResult
from adaloss.transaction import Transaction


class HandsOver:
    """The hand-over's steps, checks and the hand-over, mixed into ``MetaLossOptimizer``."""

    _warned_no_validation = False  # check_every's warning for a step without x_val, y_val

    def _new_twin(self) -> PlainTwin:
        return PlainTwin(self.model, self.base_optimizer, self.task, self.replicas)

    def _share_validation(self, meta, x_val, y_val):
        """With ``check_share``: the validation examples the checks keep never reach the
        meta-objective (``adaloss.holdout``); the meta-objective gets the rest, or, when no
        rank has any left, no meta step. Ranks weigh their parts so that the meta-objective
        is the mean over all ranks' rows, as one process would have it."""
        self._val_weight = 1.0
        if self.split is None or x_val is None or self.twin is None:  # no split after a hand-over
            return super()._share_validation(meta, x_val, y_val)
        meta, check = self.split.split(x_val, y_val)
        rows = meta[0].shape[0]
        total = self.replicas.total(rows)
        if total == 0:
            return (None, None), check
        if rows == 0:  # others have rows: this rank joins the collectives with one, unweighted
            meta, self._val_weight = (x_val[:1], y_val[:1]), 0.0
        else:
            self._val_weight = rows * self.replicas.size / total
        return meta, check

    def _after_step(self, x, y, x_val, y_val, result: StepResult) -> None:
        # Every batch, the learned loss's rejected ones too: a run stuck on rejections must
        # not freeze the plain training it would hand over to.
        if self.twin is None:
            return
        self.twin.follow(self.base_optimizer)
        # on an exception: the twin restored, the window's and watch's counts too, the step
        self.twin.step(x, y, self._grad_scale, lambda: self._check_window(x_val, y_val))

    def _check_window(self, x_val, y_val) -> None:
        """``check_every``'s part of a step, after the twin's: add, and at a window's end
        compare and maybe hand over. Host counts come back if anything raises."""
        if self.window is None:
            return
        window, watch = self.window, self.handover_rule
        saved = (window.sums, window.examples, window.batches, watch.behind)
        try:
            self._add_to_window(x_val, y_val)
        except BaseException:
            window.sums, window.examples, window.batches, watch.behind = saved
            raise

    def _add_to_window(self, x_val, y_val) -> None:
        if x_val is None and not self._warned_no_validation:
            self._warned_no_validation = True
            warnings.warn(
                "adaloss: check_every judges the hand-over on the validation batches, and "
                "step got none (x_val, y_val): steps without them add nothing to its window",
                stacklevel=8,  # here, _check_window, lambda, twin.step, _after_step, step, hook
            )
        if x_val is not None:
            self.window.add(self.model, self.twin.model, self.task, x_val, y_val)
            if self.window.due() and self.handover_rule.observe(*self.window.take(self.replicas)):
                self._hand_over()

    def check(self, x_check: torch.Tensor, y_check: torch.Tensor) -> CheckResult:
        """Compare the model with its plain-trained twin on held-out ``(x_check, y_check)``
        (``task.error``, eval mode) and hand over once the twin has been ahead at
        ``handover`` consecutive checks. Pass the same held-out examples every time, none
        of which any step sees (the validation batches favour the learned loss, which is
        fitted to them; ``check_every`` checks on them, for harm too large to hide there).
        Bad input raises ValueError before anything changes."""
        return self._compare(x_check, y_check, "observe")

    def finish(self, x_check: torch.Tensor, y_check: torch.Tensor) -> CheckResult:
        """At the end of training: keep the better of the two models on ``(x_check,
        y_check)`` — hand over if the twin's error is lower (ties keep the model). The rule
        of ``handover="final"``; with a number of checks, a last chance to hand over."""
        return self._compare(x_check, y_check, "pick")

    def _compare(self, x_check, y_check, rule: str) -> CheckResult:
        """Both models' errors; ``rule``, the watch's method, says whether to hand over."""
        if self.handover_rule is None:
            raise RuntimeError(
                "check() and finish() compare with a plain-trained twin: pass handover=P"
            )
        x_check, y_check = self.replicas.check_everywhere(
            check_batch, self.task, self.update.params(), x_check, y_check, None, None,
            ("x_check", "y_check"),
        )  # fmt: skip
        models = [self.model] if self.twin is None else [self.model, self.twin.model]
        errors = torch.stack([check_error(m, self.task, x_check, y_check) for m in models])
        (errors,) = self.replicas.mean([errors])  # the whole check batch's
        if self.twin is None:  # handed over already: the model is the twin
            return CheckResult(errors[0], None, True)
        model_error, twin_error = errors.tolist()
        if getattr(self.handover_rule, rule)(model_error, twin_error):
            self._hand_over()
        return CheckResult(errors[0], errors[1], self.twin is None)

    def _hand_over(self) -> None:
        """θ, buffers and the base optimizer's state become the twin's; the twin goes."""
        twin, params = self.twin, self.update.params()
        with Transaction(self) as tx:
            tx.save_params()
            tx.save_buffers()
            tx.save_base_state(clone=False)  # entries are replaced, not written into
            with torch.no_grad():
                for p, q in zip(params, twin.params, strict=True):
                    p.copy_(q)
                for b, c in zip(self.model.buffers(), twin.model.buffers(), strict=True):
                    b.copy_(c)
            state = self.base_optimizer.state
            for p, q in zip(params, twin.params, strict=True):
                entry = twin.optimizer.state.get(q)
                if entry is None:
                    state.pop(p, None)
                else:
                    state[p] = {k: v.clone() if torch.is_tensor(v) else v for k, v in entry.items()}
            self.handed_over_at = self.steps
        self.twin = None

    def _handover_state(self) -> dict:
        """The hand-over's part of ``state_dict``."""
        state = {
            "watch": self.handover_rule.state_dict(),
            "handed_over_at": self.handed_over_at,
            "twin": None if self.twin is None else self.twin.state_dict(),
        }
        if self.window is not None:
            state["window"] = self.window.state_dict()
        return state

    def _check_handover_state(self, state) -> None:
        """Raise ValueError unless ``state`` is a hand-over state this optimizer can load."""
        twin = lambda: self.twin if self.twin is not None else self._new_twin()  # noqa: E731
        check_saved_handover(state, twin, self.window)

    def _load_handover_state(self, state: dict) -> None:
        """Load a checked hand-over state (``_check_handover_state``)."""
        self.handover_rule.load_state_dict(state["watch"])
        self.handed_over_at = state["handed_over_at"]
        if state["twin"] is None:
            self.twin = None
        else:
            self.twin = self.twin or self._new_twin()
            self.twin.load_state_dict(state["twin"])
        if self.window is not None:  # older checkpoints: an empty window
            self.window.load_state_dict(state.get("window", ValidationWindow.EMPTY))
