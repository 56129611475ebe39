"""Where a step that does not update ϕ (``adaloss speed``'s ``fixed``) spends its extra time.

Issue 16 asks for ``fixed`` ≤ 1.05× plain. This times, in CPU time of this thread (less
sensitive to other processes than wall time), a plain step, a ``fixed`` step and the parts
a ``fixed`` step adds, side by side in interleaved rounds on ``adaloss speed``'s models and
batches: the input check (shapes, targets, finiteness of x, y, x_val, y_val), the learned
loss's value and output gradient h (with and without the default guard's (s, c)), the
finiteness check of the gradients, and the transaction's copies of θ and the momentum.

    python scripts/step_overhead.py --model lenet5 --rounds 40
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from adaloss.batches import all_finite, check_batch
from adaloss.bench.speed.methods import MODELS, Runner, make_batches, parse_method
from adaloss.objective import evaluate
from adaloss.transaction import Transaction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lenet5", choices=sorted(MODELS))
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec, device = MODELS[args.model], torch.device("cpu")
    batches = make_batches(spec, spec.batch, 4, 0, device)
    plain = Runner(spec, parse_method("plain"), batches, device, 0.01, 0.9, 0)
    fixed = Runner(spec, parse_method("fixed"), batches, device, 0.01, 0.9, 0)
    opt = fixed.opt
    x, y, x_val, y_val = batches[0]
    params = opt.update.params()
    with torch.no_grad():
        out = fixed.model(x)
    grads = [torch.randn_like(p) for p in params]
    loss = opt._base_loss_module()

    def transaction_copies() -> None:
        tx = Transaction(opt)
        tx.save_buffers()
        tx.save_params()
        tx.save_base_state(clone=True)

    parts = {
        "plain step": plain.step,
        "fixed step": fixed.step,
        "input check": lambda: check_batch(opt.task, params, x, y, x_val, y_val),
        "learned loss + h": lambda: evaluate(loss, opt.task, out, y, opt._loss_inputs, None),
        "... + guard": lambda: evaluate(
            loss, opt.task, out, y, opt._loss_inputs, opt._objective_weights()
        ),
        "gradient check": lambda: all_finite(grads),
        "copies of θ, state": transaction_copies,
    }
    for f in parts.values():  # warm-up
        for _ in range(3):
            f()
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(args.rounds):
        for name, f in parts.items():
            start = time.thread_time()
            f()
            times[name].append(time.thread_time() - start)
    plain_ms = 1e3 * min(times["plain step"])
    print(
        f"{spec.label} (batch {spec.batch}), 1 thread, {args.rounds} rounds; CPU ms of this thread"
    )
    print("| part | min ms | median ms | min × plain step |")
    print("|---|--:|--:|--:|")
    for name, ts in times.items():
        low, mid = 1e3 * min(ts), 1e3 * statistics.median(ts)
        print(f"| {name} | {low:.3f} | {mid:.3f} | {low / plain_ms:.3f} |")


if __name__ == "__main__":
    main()
