"""Fine-tune a timm model on a learned, adapting loss (AdaLFL) instead of cross-entropy.

What it shows: the usual timm training recipe -- ``timm.create_model`` (optionally loading a
local checkpoint through timm's own loader), ``timm.optim.create_optimizer_v2`` for the base
optimizer and ``timm.scheduler.CosineLRScheduler`` with warmup for its learning rate -- with
``loss.backward(); optimizer.step()`` replaced by ``adaloss.MetaLossOptimizer.step``. A
validation split held out of the training data is the meta-objective: after every base update
the learned loss takes a step that lowers the cross-entropy on a validation batch. An optional
offline phase (``--init-steps``) gives the learned loss a sensible start first.

Data: scikit-learn's 8x8 digits, upsampled to 32x32 RGB (no download), or any torchvision
``ImageFolder`` directory with ``--data PATH``. Images are resized to ``--img-size`` and
normalised with the model's own mean/std (``timm.data.resolve_data_config``).

    python examples/timm_finetune.py                                  # LeNet-5, digits, CPU
    python examples/timm_finetune.py --model adaloss_resnet18_cifar --device cuda
    python examples/timm_finetune.py --model resnet18 --cifar-stem --checkpoint resnet18.pth
    python examples/timm_finetune.py --data ~/images --model adaloss_allcnn_c --steps 2000

``--checkpoint`` is a local state dict (``torch.save(model.state_dict(), path)``) loaded with
``timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=path))``: a
classifier of a different class count is dropped and re-initialised by timm. Without it the
model starts from random initialization. Nothing is ever downloaded.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import timm
import torch
from timm.layers import set_fused_attn
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset, random_split

import adaloss
from adaloss.integrations.timm import cifar_stem  # also registers the adaloss_* models

# create_optimizer_v2 names that return torch's own SGD/Adam/AdamW (what adaloss supports).
OPTIMIZERS = ("sgd", "nesterov", "momentum", "adam", "adamw")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="adaloss_lenet5", help="any timm model name")
    p.add_argument("--checkpoint", help="local state dict to fine-tune from (timm's loader)")
    p.add_argument(
        "--cifar-stem", action="store_true", help="adapt a timm ResNet/VGG to 32x32 input"
    )
    p.add_argument("--data", help="ImageFolder directory (default: scikit-learn digits)")
    p.add_argument("--img-size", type=int, default=32, help="input height and width")
    p.add_argument("--in-chans", type=int, default=3, help="input channels")
    p.add_argument("--steps", type=int, default=300, help="online training steps")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--opt", default="adamw", choices=OPTIMIZERS, help="create_optimizer_v2 name")
    p.add_argument("--lr", type=float, default=3e-3, help="base learning rate (peak)")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-steps", type=int, default=None, help="default: steps // 10")
    p.add_argument("--min-lr", type=float, default=None, help="default: lr / 100")
    p.add_argument("--recipe", default="default", choices=("default", "paper"),
                   help="default: warm start, η 1e-3, guard; paper: Algorithm 1")  # fmt: skip
    p.add_argument("--meta-lr", type=float, default=None, help="online η (default: the recipe's)")
    p.add_argument("--init-steps", type=int, default=50,
                   help="offline initialization steps (--recipe paper only)")  # fmt: skip
    p.add_argument("--init-meta-lr", type=float, default=1e-3, help="(--recipe paper only)")
    p.add_argument("--hypergrad", default="forward", choices=("forward", "unroll"))
    p.add_argument("--val-fraction", type=float, default=0.2, help="of the non-test data")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.init_steps < 0:
        p.error("need --steps >= 1, --batch-size >= 1 and --init-steps >= 0")
    return args


# -------------------------------------------------------------------------------- model


def create_model(args: argparse.Namespace, num_classes: int) -> nn.Module:
    """timm.create_model, from ``--checkpoint`` through timm's pretrained loader if given."""
    # Attention through F.scaled_dot_product_attention has, on CPU, neither a forward-mode rule
    # (forward engine) nor a double backward (unroll engine); timm's explicit attention has both.
    set_fused_attn(False)
    kwargs: dict[str, Any] = dict(num_classes=num_classes, in_chans=args.in_chans)
    cfg = timm.models.get_pretrained_cfg(args.model)
    if cfg is not None and cfg.fixed_input_size:  # e.g. the MLP, LeNet-5, ViTs
        kwargs["img_size"] = args.img_size
    if args.checkpoint:
        model = timm.create_model(
            args.model,
            pretrained=True,
            pretrained_cfg_overlay=dict(file=args.checkpoint),
            **kwargs,
        )
        print(f"loaded pretrained weights from {args.checkpoint}")
    else:
        model = timm.create_model(args.model, pretrained=False, **kwargs)
        print("no --checkpoint given: training from random initialization")
    if args.cifar_stem:
        model = cifar_stem(model)
    return model


# -------------------------------------------------------------------------------- data


def _normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    shape = (1, -1, 1, 1) if len(mean) > 1 else (1, 1, 1, 1)
    return (x - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)


def digits(args: argparse.Namespace, mean, std) -> Dataset:
    """scikit-learn's 1,797 8x8 digits, bilinearly upsampled and channel-repeated."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(args.img_size, args.img_size), mode="bilinear")
    x = _normalize(x.repeat(1, args.in_chans, 1, 1), mean, std)
    return TensorDataset(x, torch.tensor(bunch.target))


def image_folder(args: argparse.Namespace, mean, std, interpolation: str) -> Dataset:
    from torchvision import datasets, transforms

    steps: list[Any] = [
        transforms.Resize(
            (args.img_size, args.img_size),
            interpolation=transforms.InterpolationMode(interpolation),
        )
    ]
    if args.in_chans == 1:
        steps.append(transforms.Grayscale(1))
    steps += [transforms.ToTensor(), transforms.Normalize(mean, std)]
    return datasets.ImageFolder(args.data, transform=transforms.Compose(steps))


def count_classes(args: argparse.Namespace) -> int:
    if args.data is None:
        return 10
    from torchvision.datasets import ImageFolder

    return len(ImageFolder(args.data).classes)


def splits(args: argparse.Namespace, data: Dataset) -> tuple[Dataset, Dataset, Dataset]:
    """Train / validation (the meta-objective) / test, by a seeded random split."""
    n = len(data)  # type: ignore[arg-type]
    n_test = max(1, round(args.test_fraction * n))
    n_val = max(1, round(args.val_fraction * (n - n_test)))
    if n - n_test - n_val < 1:
        raise SystemExit(f"not enough images ({n}) for a train/validation/test split")
    parts = random_split(
        data, [n - n_test - n_val, n_val, n_test], torch.Generator().manual_seed(args.seed)
    )
    return parts[0], parts[1], parts[2]


def forever(loader: DataLoader, device: torch.device) -> Iterator:
    """Batches on ``device``, reshuffled each pass, without end."""
    for _ in itertools.count():
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device, max_batches: int | None = None):
    """Mean cross-entropy and accuracy in eval mode."""
    model.eval()
    loss = correct = seen = 0.0
    for x, y in itertools.islice(loader, max_batches):
        x, y = x.to(device), y.to(device)
        out = model(x)
        loss += float(F.cross_entropy(out, y, reduction="sum"))
        correct += float((out.argmax(1) == y).sum())
        seen += len(y)
    model.train()
    return loss / seen, correct / seen


# -------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Fine-tune and report; returns the test loss and accuracy and the trained model."""
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    num_classes = count_classes(args)
    model = create_model(args, num_classes).to(device)
    config = timm.data.resolve_data_config({}, model=model)  # mean/std the weights expect
    mean, std = config["mean"], config["std"]
    if args.data is None:
        data = digits(args, mean, std)
        source = "scikit-learn digits"
    else:
        data = image_folder(args, mean, std, config.get("interpolation", "bilinear"))
        source = f"ImageFolder {args.data}"
    train, val, test = splits(args, data)
    batch = min(args.batch_size, len(train), len(val))

    seeds = itertools.count(args.seed + 1)

    def loader(part: Dataset, shuffle: bool) -> DataLoader:
        # drop_last keeps BatchNorm away from a final batch of one image; a generator of its
        # own per loader keeps shuffling and dropout independent of how often we evaluate.
        return DataLoader(
            part,
            batch,
            shuffle=shuffle,
            drop_last=shuffle,
            num_workers=args.workers,
            generator=torch.Generator().manual_seed(next(seeds)),
        )

    train_batches = forever(loader(train, True), device)
    val_batches = forever(loader(val, True), device)
    val_eval, test_eval = loader(val, False), loader(test, False)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"model {args.model} ({n_params:,} params) on {device}; data {source}, {num_classes} "
        f"classes, {args.in_chans}x{args.img_size}x{args.img_size}: train {len(train)}, "
        f"validation {len(val)}, test {len(test)}"
    )

    base = create_optimizer_v2(model, args.opt, lr=args.lr, weight_decay=args.weight_decay)
    opt = adaloss.MetaLossOptimizer(
        model,
        base,
        adaloss.Classification(num_classes),
        meta_lr=args.meta_lr,
        hypergrad=args.hypergrad,
        recipe=args.recipe,
    )
    print(f"base optimizer: create_optimizer_v2({args.opt!r}) -> {type(base).__name__}")
    if args.recipe == "default":
        opt.initialize()  # the warm start: fits ϕ alone, never touches the model
        print(f"warm start: learned-loss gradient mismatch {opt.warm_start_mismatch:.3f}")
    elif args.init_steps:
        # Before the scheduler: a warmup scheduler lowers the lr the inner steps use.
        # Iterators of their own: initialize() closes a generator it is given when it ends.
        losses = opt.initialize(
            forever(loader(train, True), device),
            forever(loader(val, True), device),
            steps=args.init_steps,
            meta_lr=args.init_meta_lr,
        )
        if losses:
            print(
                f"offline initialization: {args.init_steps} steps, validation task loss "
                f"{losses[0]:.4f} -> {losses[-1]:.4f}"
            )

    warmup = args.steps // 10 if args.warmup_steps is None else args.warmup_steps
    scheduler = CosineLRScheduler(
        base,
        t_initial=args.steps,
        lr_min=args.lr / 100 if args.min_lr is None else args.min_lr,
        warmup_t=warmup,
        warmup_lr_init=args.lr / 100,
        t_in_epochs=False,  # scheduled per update: step_update(number of updates so far)
    )

    model.train()
    task_losses: list[float] = []
    for step in range(1, args.steps + 1):
        x, y = next(train_batches)
        x_val, y_val = next(val_batches)
        lr = base.param_groups[0]["lr"]
        result = opt.step(x, y, x_val, y_val)
        scheduler.step_update(step)
        if result.task_loss is not None:
            task_losses.append(float(result.task_loss))
        if step % args.log_every == 0 or step == args.steps:
            mean_task = sum(task_losses) / max(1, len(task_losses))
            val_loss, val_acc = evaluate(model, val_eval, device, max_batches=20)
            print(
                f"step {step:5d}/{args.steps}  lr {lr:.3g}  task loss {mean_task:.4f}  "
                f"validation loss {val_loss:.4f}  accuracy {val_acc:.4f}"
            )
            task_losses.clear()

    test_loss, test_acc = evaluate(model, test_eval, device)
    if opt.skipped_steps:
        print(f"skipped {opt.skipped_steps} steps with non-finite values")
    print(f"test loss {test_loss:.4f}  test accuracy {test_acc:.4f} ({len(test)} images)")
    return {
        "test_loss": test_loss,
        "test_accuracy": test_acc,
        "skipped_steps": opt.skipped_steps,
        "model": model,
    }


if __name__ == "__main__":
    main()
