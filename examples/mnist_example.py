"""PyTorch's official MNIST example (pytorch/examples, mnist/main.py), ported to adaloss.

Same ``Net``, Adadelta at lr 1.0, StepLR with gamma 0.7 and the same flags. What
changes: ``MetaLossOptimizer`` wraps the Adadelta optimizer and trains the model on
a learned loss, whose meta-objective is the cross-entropy on a validation split
held out of the training set (``--val-size``); ``optimizer.step(x, y, x_val, y_val)``
replaces ``zero_grad(); nll_loss(...).backward(); step()``. README.md shows the diff.

MNIST is read by ``torchvision.datasets.MNIST`` from ``--data`` (``<data>/MNIST/raw``);
it is downloaded only when the files are not there.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torchvision import datasets, transforms

import adaloss


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def forever(loader):
    """Validation batches for the meta-objective, reshuffled on every pass."""
    while True:
        yield from loader


def train(args, model, device, train_loader, val_batches, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        x_val, y_val = (t.to(device) for t in next(val_batches))
        result = optimizer.step(data, target, x_val, y_val)
        if batch_idx % args.log_interval == 0:
            print(
                "Train Epoch: {} [{}/{} ({:.0f}%)]\tLearned loss: {:.6f}\tVal loss: {:.6f}".format(
                    epoch,
                    batch_idx * len(data),
                    len(train_loader.dataset),
                    100.0 * batch_idx / len(train_loader),
                    result.learned_loss.item(),
                    float("nan") if result.task_loss is None else result.task_loss.item(),
                )
            )
            if args.dry_run:
                break


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()  # sum up batch loss
            pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)

    n = len(test_loader.dataset)
    print(
        f"\nTest set: Average loss: {test_loss:.4f}, "
        f"Accuracy: {correct}/{n} ({100.0 * correct / n:.0f}%)\n"
    )
    return test_loss, correct / n


def main(argv=None):
    # Training settings
    parser = argparse.ArgumentParser(description="PyTorch MNIST Example (adaloss)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        metavar="N",
        help="input batch size for training (default: 64)",
    )
    parser.add_argument(
        "--test-batch-size",
        type=int,
        default=1000,
        metavar="N",
        help="input batch size for testing (default: 1000)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=14,
        metavar="N",
        help="number of epochs to train (default: 14)",
    )
    parser.add_argument(
        "--lr", type=float, default=1.0, metavar="LR", help="learning rate (default: 1.0)"
    )
    parser.add_argument(
        "--gamma",
        type=float,
        default=0.7,
        metavar="M",
        help="Learning rate step gamma (default: 0.7)",
    )
    parser.add_argument("--no-accel", action="store_true", help="disables accelerator")
    parser.add_argument("--dry-run", action="store_true", help="quickly check a single pass")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default: 1)")
    parser.add_argument(
        "--log-interval",
        type=int,
        default=10,
        metavar="N",
        help="how many batches to wait before logging training status",
    )
    parser.add_argument("--save-model", action="store_true", help="For Saving the current Model")
    parser.add_argument(
        "--data",
        default="../data",
        metavar="DIR",
        help="MNIST root: <DIR>/MNIST/raw (default: ../data)",
    )
    # adaloss
    parser.add_argument(
        "--val-size",
        type=int,
        default=5000,
        metavar="N",
        help="training images held out for the meta-objective (default: 5000)",
    )
    parser.add_argument(
        "--meta-lr",
        type=float,
        default=None,
        metavar="ETA",
        help="online meta learning rate of the loss network (default: the recipe's, 1e-3)",
    )
    args = parser.parse_args(argv)  # fmt: skip

    use_accel = not args.no_accel and torch.accelerator.is_available()

    torch.manual_seed(args.seed)

    if use_accel:
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")

    train_kwargs = {"batch_size": args.batch_size, "shuffle": True}
    test_kwargs = {"batch_size": args.test_batch_size}
    if use_accel:
        accel_kwargs = {"num_workers": 1, "persistent_workers": True, "pin_memory": True}
        train_kwargs.update(accel_kwargs)
        test_kwargs.update(accel_kwargs)

    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    )
    dataset1 = datasets.MNIST(args.data, train=True, download=True, transform=transform)
    dataset2 = datasets.MNIST(args.data, train=False, transform=transform)
    val_size = min(args.val_size, len(dataset1) // 10)  # a tiny dataset keeps 90% for training
    dataset1, val_set = torch.utils.data.random_split(
        dataset1, [len(dataset1) - val_size, val_size], torch.Generator().manual_seed(args.seed)
    )
    train_loader = torch.utils.data.DataLoader(dataset1, **train_kwargs)
    val_loader = torch.utils.data.DataLoader(val_set, **train_kwargs)
    test_loader = torch.utils.data.DataLoader(dataset2, **test_kwargs)

    model = Net().to(device)
    base_optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    optimizer = adaloss.MetaLossOptimizer(
        model, base_optimizer, adaloss.Classification(10), meta_lr=args.meta_lr
    )
    optimizer.initialize()  # the default recipe's warm start: ϕ alone, about a second
    val_batches = forever(val_loader)

    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    result = None
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, val_batches, optimizer, epoch)
        result = test(model, device, test_loader)
        scheduler.step()

    if args.save_model:
        torch.save(model.state_dict(), "mnist_cnn.pt")
    return result


if __name__ == "__main__":
    main()
