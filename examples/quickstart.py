"""The README's drop-in example as a runnable script.

A small MLP on scikit-learn's digits: the usual `loss.backward(); optimizer.step()`
loop is replaced by `MetaLossOptimizer.step(x, y, x_val, y_val)`.
"""

from __future__ import annotations

import argparse
import itertools

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

import adaloss


def loaders(seed: int) -> tuple[DataLoader, DataLoader, TensorDataset]:
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, random_state=seed)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.1, random_state=seed, stratify=y_rest
    )
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(x_train, y_train), 64, shuffle=True, generator=generator)
    val = DataLoader(TensorDataset(x_val, y_val), 64, shuffle=True, generator=generator)
    return train, val, TensorDataset(x_test, y_test)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    train_loader, val_loader, test = loaders(args.seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    # The default recipe: ϕ is warm-started so that the learned loss first moves the model as
    # cross-entropy does, then adapts after every step under the divergence guard.
    opt = adaloss.MetaLossOptimizer(model, optimizer, adaloss.Classification(10))
    opt.initialize(train_loader)  # the warm start (~1 s); recipe="paper" runs Algorithm 1
    for epoch in range(args.epochs):
        for (x, y), (x_val, y_val) in zip(train_loader, itertools.cycle(val_loader)):
            result = opt.step(x, y, x_val, y_val)  # replaces backward(); step(); zero_grad()
        print(
            f"epoch {epoch + 1}: learned loss {float(result.learned_loss):+.4f}, "
            f"validation cross-entropy {float(result.task_loss):.4f}"
        )
    with torch.no_grad():
        error = float(opt.task.error(model(test.tensors[0]), test.tensors[1]))
    print(f"test error rate: {error:.4f}")
    return error


if __name__ == "__main__":
    main()
