"""How benchmark examples are held and served: tensors moved to a device once, batch streams.

``ArrayDataset`` holds features and targets as two tensors; ``ImageDataset`` holds uint8
images and normalizes (and, for training splits, augments) a whole batch at once on the
images' device, so no DataLoader workers are needed. ``batches`` gives reproducible
infinite batch streams, ``eval_batches`` one ordered, unaugmented pass for evaluation,
``full_batch`` all of a split at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["ArrayDataset", "ImageDataset", "batches", "eval_batches", "full_batch"]


class _DeviceCopies:
    """`to(device)`: self when already there, else a copy made once and kept, so that
    evaluating every few steps does not copy the data again."""

    _copies: dict

    def _copy_to(self, device: torch.device | str):
        raise NotImplementedError

    def _device(self) -> torch.device:
        raise NotImplementedError

    def to(self, device: torch.device | str | None):
        if device is None or self._device() == torch.device(device):
            return self
        key = str(torch.device(device))
        if key not in self._copies:
            self._copies[key] = self._copy_to(device)
        return self._copies[key]


class ArrayDataset(_DeviceCopies, torch.utils.data.Dataset):
    """Examples held as two tensors: features `x` (N, ...) and targets `y` (N, ...)."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        self.x, self.y = x, y
        self._copies: dict[str, ArrayDataset] = {}

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.x[i], self.y[i]

    def __repr__(self) -> str:
        return f"ArrayDataset(x={tuple(self.x.shape)}, y={tuple(self.y.shape)})"

    @property
    def targets(self) -> Tensor:
        return self.y

    def _device(self) -> torch.device:
        return self.x.device

    def _copy_to(self, device: torch.device | str) -> ArrayDataset:
        return ArrayDataset(self.x.to(device), self.y.to(device))

    def batch(
        self, idx: Tensor, generator: torch.Generator | None = None, augment: bool | None = None
    ) -> tuple[Tensor, Tensor]:
        """Examples `idx`, gathered on this dataset's device."""
        idx = idx.to(self.x.device)
        return self.x[idx], self.y[idx]


class ImageDataset(_DeviceCopies, torch.utils.data.Dataset):
    """uint8 images (N, C, H, W) and int64 labels (N,), normalized (and, for training
    splits, augmented) on access. `batch` does it for a whole batch at once, on the
    images' device, so no DataLoader workers are needed."""

    def __init__(
        self,
        images: Tensor,
        targets: Tensor,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        augment: bool = False,
        padding: int = 4,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}"
            )
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        if not len(mean) == len(std) == images.shape[1]:
            raise ValueError("mean and std need one entry per channel")
        self.images, self.targets = images, targets
        self.mean, self.std = tuple(mean), tuple(std)
        self.augment, self.padding = augment, padding
        self._mean = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
        self._std = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
        self._copies: dict[str, ImageDataset] = {}

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x, y = self.batch(torch.tensor([i]))
        return x[0], y[0]

    def __repr__(self) -> str:
        return (
            f"ImageDataset(images={tuple(self.images.shape)}, augment={self.augment}, "
            f"mean={self.mean}, std={self.std})"
        )

    def _device(self) -> torch.device:
        return self.images.device

    def _copy_to(self, device: torch.device | str) -> ImageDataset:
        return ImageDataset(
            self.images.to(device),
            self.targets.to(device),
            self.mean,
            self.std,
            self.augment,
            self.padding,
        )

    def batch(
        self, idx: Tensor, generator: torch.Generator | None = None, augment: bool | None = None
    ) -> tuple[Tensor, Tensor]:
        """Float images (B, C, H, W) and labels (B,) of examples `idx`.

        `augment` defaults to this split's setting; random draws come from the CPU
        `generator` (torch's default one when None), so batches are reproducible."""
        device = self.images.device
        idx = idx.to(device)
        x = self.images[idx].float().div_(255)
        if self.augment if augment is None else augment:
            x = _crop_and_flip(x, self.padding, generator)
        return (x - self._mean) / self._std, self.targets[idx]


def _crop_and_flip(x: Tensor, pad: int, generator: torch.Generator | None) -> Tensor:
    """Per image: zero-pad by `pad`, take a random H×W crop, flip horizontally with
    probability 1/2 (torchvision's RandomCrop(padding=pad) + RandomHorizontalFlip)."""
    b, _, h, w = x.shape
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)
    cols = dx[:, None] + torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # flipping a crop = reversed columns
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad)).permute(0, 2, 3, 1)
    out = padded[torch.arange(b, device=x.device)[:, None, None], rows[:, :, None], cols[:, None]]
    return out.permute(0, 3, 1, 2).contiguous()


def batches(
    ds: torch.utils.data.Dataset,
    batch_size: int,
    seed: int,
    device: torch.device | str | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Infinite stream of shuffled batches, reproducible from `seed`.

    Indices are drawn from consecutive random permutations (epochs) cut into batches of
    exactly `batch_size`, so each block of len(ds) consecutive examples covers every
    example once; a batch may straddle two epochs (and repeats examples only when
    batch_size > len(ds)). Our datasets are moved to `device` once and gathered there."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = len(ds)
    if n == 0:
        raise ValueError("empty dataset")
    generator = torch.Generator().manual_seed(seed)
    fetch = _fetcher(ds, device)
    pending = torch.empty(0, dtype=torch.long)
    while True:
        while len(pending) < batch_size:
            pending = torch.cat([pending, torch.randperm(n, generator=generator)])
        idx, pending = pending[:batch_size], pending[batch_size:]
        yield fetch(idx, generator, None)


def eval_batches(
    ds: torch.utils.data.Dataset, batch_size: int = 1024, device: torch.device | str | None = None
) -> Iterator[tuple[Tensor, Tensor]]:
    """One pass over `ds` in order, in chunks of `batch_size`, without augmentation
    (for ArrayDataset/ImageDataset; other datasets are read through `ds[i]`)."""
    fetch = _fetcher(ds, device)
    for start in range(0, len(ds), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(ds)))
        yield fetch(idx, None, False)


def full_batch(
    ds: torch.utils.data.Dataset, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    """All of `ds` as one (x, y) pair, in order, without augmentation."""
    return _fetcher(ds, device)(torch.arange(len(ds)), None, False)


def _fetcher(ds, device):
    """fetch(idx, generator, augment) -> (x, y) on `device`."""
    if isinstance(ds, ArrayDataset | ImageDataset):
        return ds.to(device).batch

    def fetch(idx, generator, augment):  # any map-style dataset: per-item, then collate
        x, y = torch.utils.data.default_collate([ds[int(i)] for i in idx])
        return (x, y) if device is None else (x.to(device), y.to(device))

    return fetch
