"""Probe the loss that the offline phase (Algorithm 1) leaves behind, on one regression task.

Prints ∂ℓ/∂p of the learned loss at a fixed target over a range of errors (squared error's
slope is 2·error), then trains with it and prints the batch predictions every 10 steps
until the run diverges or ``--steps`` is reached (then the validation and test MSE).
``--method ml3`` keeps ϕ fixed; ``adalfl`` adapts it online at ``--meta-lr``.
``--bias-free`` uses weight-only layers (the paper's eq. 12), ``--kaiming`` also draws
them Kaiming-normal. Used for BENCHMARKS.md ("Why the paper's settings diverge here");
run with ADALOSS_DATA pointing at the data sets.
"""

from __future__ import annotations

import argparse
import warnings

import torch
from torch import nn

import adaloss
from adaloss.bench import runner
from adaloss.bench.config import DEFAULT_INIT_STEPS, DEFAULT_META_LR, RunConfig


def loss_network(bias_free: bool, kaiming: bool) -> adaloss.LossNetwork:
    net = adaloss.LossNetwork()
    if bias_free:
        layers = []
        for m in net.net:
            if isinstance(m, nn.Linear):
                m = nn.Linear(m.in_features, m.out_features, bias=False)
                if kaiming:
                    nn.init.kaiming_normal_(m.weight)
            layers.append(m)
        net.net = nn.Sequential(*layers)
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="crime", choices=("crime", "diabetes", "california"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init-steps", type=int, default=DEFAULT_INIT_STEPS)
    parser.add_argument("--method", default="ml3", choices=("ml3", "adalfl"))
    parser.add_argument("--meta-lr", type=float, default=DEFAULT_META_LR)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--target", type=float, default=0.4)
    parser.add_argument("--bias-free", action="store_true")
    parser.add_argument("--kaiming", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")

    # The same θ_0, ϕ_0, batch streams and offline phase as `adaloss run` for this seed.
    config = RunConfig(
        args.task, "adaloss_mlp", args.method, args.seed, args.steps, lr=0.001,
        meta_lr=args.meta_lr, init_steps=args.init_steps,
    )  # fmt: skip
    run = runner.prepare_run(config, make_loss=lambda: loss_network(args.bias_free, args.kaiming))
    data, task, model, opt = run.data, run.task, run.model, run.opt
    loss = opt.loss

    errors = torch.linspace(-0.4, 0.4, 9)
    pred = (args.target + errors).requires_grad_()
    target = torch.full_like(pred, args.target)
    (slope,) = torch.autograd.grad(loss.pointwise(pred[:, None], target[:, None]).sum(), pred)
    print(f"dl/dp at target {args.target}, errors {[round(e, 2) for e in errors.tolist()]}:")
    print("  learned:", [round(v, 2) for v in slope.tolist()])
    print("  MSE    :", [round(2 * e, 2) for e in errors.tolist()])

    train, val = run.train, run.val
    for step in range(1, args.steps + 1):
        x, y = next(train)
        result = opt.step(x, y, *next(val))
        if result.skipped:
            print(f"step {step}: non-finite, diverged")
            return
        if step % 10 == 0:
            with torch.no_grad():
                out = model(x)
            print(f"step {step}: batch prediction mean {float(out.mean()):.3g} "
                  f"std {float(out.std()):.3g}")  # fmt: skip
    val_mse = runner.evaluate_error(model, task, data.val, "cpu")
    test_mse = runner.evaluate_error(model, task, data.test, "cpu")
    print(f"no divergence in {args.steps} steps: validation MSE {val_mse:.4f}, test {test_mse:.4f}")


if __name__ == "__main__":
    main()
