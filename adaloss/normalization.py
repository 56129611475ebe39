"""Per-channel image normalization constants of the paper's image data sets.

Dependency-free, so that the timm integration (pretrained configs) and the
benchmark's data loaders quote one table without importing each other.
"""

from __future__ import annotations

NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
}
"""Per-channel (mean, std) of the training images on the [0, 1] scale, by data set name."""
