"""How much signal is in the default recipe's meta-gradient as a run goes on? (issue 12)

Steps a benchmark row's default AdaLFL run (``prepare_run``: same θ_0, ϕ_0 and batches as
``adaloss run``) and, at a few steps, reads the meta-optimizer's Adam state: the median
over ϕ's coordinates of |m̂|/√v̂ (1 for a gradient of constant sign; what Gaussian noise
gives is printed first, from Adam fed noise for as many steps), ‖ϕ − ϕ_0‖, and how many
steps the guard has acted on so far.

    python scripts/meta_noise.py --task diabetes --seed 0 --steps 3000
    python scripts/meta_noise.py --task digits --model adaloss_logistic --steps 3000
"""

from __future__ import annotations

import argparse

import torch

from adaloss.bench.config import PAPER_MODELS, RunConfig, paper_lr
from adaloss.bench.runner import prepare_run

STOPS = (10, 100, 300, 1000, 2000, 3000, 5000, 10_000)


def adam_ratio(optimizer: torch.optim.Adam) -> torch.Tensor:
    """|m̂|/√v̂ of every coordinate Adam has stepped (bias-corrected moments)."""
    ratios = []
    for group in optimizer.param_groups:
        beta1, beta2 = group["betas"]
        for p in group["params"]:
            state = optimizer.state[p]
            if not state:
                continue
            n = float(state["step"])
            m = state["exp_avg"] / (1 - beta1**n)
            v = state["exp_avg_sq"] / (1 - beta2**n)
            ratios.append((m.abs() / v.sqrt().clamp_min(1e-30)).flatten())
    return torch.cat(ratios)


def noise_reference(steps: int, lr: float, size: int = 10_000) -> tuple[float, float]:
    """(median |m̂|/√v̂, RMS displacement per coordinate) of Adam fed Gaussian noise."""
    torch.manual_seed(0)
    p = torch.zeros(size, requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr)
    for _ in range(steps):
        p.grad = torch.randn(size)
        opt.step()
    return float(adam_ratio(opt).median()), float(p.detach().pow(2).mean().sqrt())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--model", default=None, help="default: the paper's first for the task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = args.model or PAPER_MODELS[args.task][0]
    config = RunConfig(task=args.task, model=model, method="adalfl", recipe="default",
                       seed=args.seed, steps=args.steps, data_dir=args.data_dir,
                       lr=paper_lr(args.task))  # fmt: skip
    run = prepare_run(config)
    meta = run.opt.meta_optimizer
    phi = [p for group in meta.param_groups for p in group["params"]]
    phi_0 = [p.detach().clone() for p in phi]
    eta = meta.param_groups[0]["lr"]
    ratio, spread = noise_reference(args.steps, eta)
    print(f"{args.task}/{model} seed {args.seed}, ϕ: {sum(p.numel() for p in phi)} weights, "
          f"η {eta:g}; Adam fed Gaussian noise for {args.steps} steps: median |m̂|/√v̂ "
          f"{ratio:.3f}, RMS displacement {spread:.4f} per coordinate")  # fmt: skip
    for t in range(1, args.steps + 1):
        run.step()
        if t in STOPS or t == args.steps:
            pairs = zip(phi, phi_0, strict=True)
            moved = sum(float((p.detach() - q).pow(2).sum()) for p, q in pairs) ** 0.5
            print(f"  step {t}: median |m̂|/√v̂ {float(adam_ratio(meta).median()):.3f}, "
                  f"‖ϕ − ϕ_0‖ {moved:.3f}, guard acted on {run.opt.guarded_steps} steps",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
