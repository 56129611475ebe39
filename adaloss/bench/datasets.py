"""The paper's benchmark tasks (§4.2, Appendix C), loaded into one small structure.

Every task comes as train / val / selection / test splits of CPU tensors (the
four-way protocol of the paper's Appendix D.5):

- regression (diabetes, crime, california): a fixed 80/20 train/test split (the same
  for every seed), features standardized and targets min-max scaled to [0, 1] with
  statistics of the training part only;
- classification (digits, mnist, cifar10, cifar100, svhn): the original train/test
  split (digits: a fixed stratified 80/20 one);
- then a fixed 10% of the training part is held out as the selection split (the same
  for every seed; stratified for classification), and a seeded 10% of the rest as the
  validation split.

The validation split only feeds the meta-objective; the selection split is seen by no
training step and is what recipes and hyper-parameters are chosen on; the test split
is never used for any choice. CIFAR and SVHN training images are augmented (random crop with
4-pixel padding, horizontal flip) on the fly; validation and test images are only
normalized. The raw files are read by ``adaloss.bench.readers``; the splits are held and
served as batches by ``adaloss.bench.batching``.

scikit-learn is imported inside the functions that need it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
import torch

from adaloss.bench.batching import ArrayDataset, ImageDataset
from adaloss.bench.readers import IMAGE_READERS, REGRESSION_READERS, resolve_data_dir
from adaloss.normalization import NORMALIZATION

__all__ = ["DATASETS", "Dataset", "corrupt_training_targets", "hold_out_check", "load_dataset"]

DATASETS = ("diabetes", "crime", "california", "digits", "mnist", "cifar10", "cifar100", "svhn")

SPLIT_SEED = 0
"""random_state of the fixed 80/20 train/test split of the datasets that have none."""

VAL_FRACTION = 0.1
SELECTION_FRACTION = 0.1
TEST_FRACTION = 0.2


@dataclass
class Dataset:
    """One benchmark task: CPU tensors split into train / val / test."""

    name: str
    kind: str  # "regression" | "classification"
    num_outputs: int  # regression targets, or number of classes
    input_shape: tuple[int, ...]  # per example, e.g. (10,) or (1, 28, 28)
    train: torch.utils.data.Dataset  # 81% of the original training split
    val: torch.utils.data.Dataset  # 9%: feeds the meta-objective only
    selection: torch.utils.data.Dataset  # 10%, fixed: seen by no training step; for choices
    test: torch.utils.data.Dataset
    check: torch.utils.data.Dataset | None = None  # carved out by hold_out_check


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    download: bool = True,
) -> Dataset:
    """Load benchmark task `name` (one of DATASETS).

    `seed` chooses only the validation split; the test split never depends on it.
    Files are read from `resolve_data_dir(data_dir)`; missing ones are downloaded when
    `download` is true, else (or when that fails) a FileNotFoundError says what to put
    where. diabetes and digits ship with scikit-learn."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    if name == "digits":
        return _load_digits(seed)
    root = resolve_data_dir(data_dir)
    if name in REGRESSION_READERS:
        x, y = REGRESSION_READERS[name](root, download)
        return _regression(name, x, y, seed)
    (train_x, train_y), (test_x, test_y), num_classes = IMAGE_READERS[name](root, download)
    return _images(name, train_x, train_y, test_x, test_y, num_classes, seed)


def corrupt_training_targets(data: Dataset, fraction: float, seed: int) -> Dataset:
    """``data`` with a seeded ``fraction`` of its training targets replaced by noise.

    Classification: the label becomes a class drawn uniformly from all classes (symmetric
    label noise). Regression (targets scaled to [0, 1]): the target becomes a uniform draw
    from [0, 1] (gross outliers). Validation, selection and test stay clean. This is the
    setting where a loss learned against clean validation data has a known way to beat the
    handcrafted one: it can pull less where corrupted examples put their errors (the
    reweighting of Ren et al. 2018, learned as a loss shape instead of per example).
    Which examples are corrupted, and how, depends on ``seed`` only, not on the method.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the corrupted fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        return data
    train = data.train
    targets = train.targets.clone()
    gen = torch.Generator().manual_seed(40_000 + seed)
    chosen = torch.randperm(len(targets), generator=gen)[: round(fraction * len(targets))]
    if data.kind == "classification":
        noise = torch.randint(data.num_outputs, (len(chosen),), generator=gen)
    else:
        noise = torch.rand((len(chosen), *targets.shape[1:]), generator=gen)
    targets[chosen] = noise.to(targets.dtype)
    if isinstance(train, ImageDataset):
        noisy = ImageDataset(
            train.images, targets, train.mean, train.std, train.augment, train.padding
        )
    else:
        noisy = ArrayDataset(train.x, targets)
    return replace(data, train=noisy)


def hold_out_check(data: Dataset, fraction: float, seed: int, source: str = "val") -> Dataset:
    """``data`` with a seeded ``fraction`` of its ``source`` split moved to a *check* split.

    Why: a learned loss is fitted to its validation batches, so they cannot say whether the
    model would do better on the task loss alone; examples held out of the meta-objective can
    (BENCHMARKS.md, "A check split"). ``source`` "val" takes them from the meta-objective's
    data, "train" from the training data (every method then trains on less, the
    meta-objective keeps all of validation). Stratified for classification, like the others;
    the other splits are untouched.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the check fraction must be in [0, 1), got {fraction}")
    if source not in ("val", "train"):
        raise ValueError(f"a check split comes from 'val' or 'train', got {source!r}")
    if fraction == 0.0:
        return data
    part = getattr(data, source)
    if not isinstance(part, ArrayDataset):
        raise ValueError(f"a check split needs a tensor {source} split, got {type(part).__name__}")
    labels = part.y.numpy() if data.kind == "classification" else None
    keep, check = (torch.as_tensor(i) for i in _split(np.arange(len(part)), fraction, seed, labels))
    return replace(
        data,
        **{source: ArrayDataset(part.x[keep], part.y[keep])},
        check=ArrayDataset(part.x[check], part.y[check]),
    )


def _val_split(n: int, seed: int, stratify: np.ndarray | None = None):
    """Indices (train, val, selection) into a training part of ``n`` examples.

    The selection split depends on nothing but ``n`` (and the labels), so every seed and
    every method is chosen on the same held-out examples; the validation split is seeded.
    """
    rest, selection = _split(np.arange(n), SELECTION_FRACTION, SPLIT_SEED, stratify)
    tr, va = _split(rest, VAL_FRACTION, seed, stratify)
    return tr, va, selection


def _split(indices: np.ndarray, fraction: float, seed: int, labels: np.ndarray | None):
    """Hold out ``fraction`` of ``indices``, stratified by ``labels`` where every class can
    be represented (tiny data sets fall back to a plain random split)."""
    from sklearn.model_selection import train_test_split

    strata = None if labels is None else labels[indices]
    if strata is not None:
        classes, counts = np.unique(strata, return_counts=True)
        held = int(np.ceil(fraction * len(indices)))
        if counts.min() < 2 or held < len(classes) or len(indices) - held < len(classes):
            strata = None
    return train_test_split(indices, test_size=fraction, random_state=seed, stratify=strata)


def _regression(name: str, x: np.ndarray, y: np.ndarray, seed: int) -> Dataset:
    """Fixed 80/20 split, scaling from the 80% part, then a seeded 10% validation split."""
    from sklearn.model_selection import train_test_split

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64).reshape(len(x), -1)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED
    )
    mean, std = x_tr.mean(0), x_tr.std(0)
    std[std == 0] = 1.0
    lo, hi = y_tr.min(0), y_tr.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)

    def tensors(xs, ys):
        return ArrayDataset(
            torch.as_tensor((xs - mean) / std, dtype=torch.float32),
            torch.as_tensor((ys - lo) / span, dtype=torch.float32),
        )

    tr, va, sel = _val_split(len(x_tr), seed)
    return Dataset(
        name=name,
        kind="regression",
        num_outputs=y.shape[1],
        input_shape=(x.shape[1],),
        train=tensors(x_tr[tr], y_tr[tr]),
        val=tensors(x_tr[va], y_tr[va]),
        selection=tensors(x_tr[sel], y_tr[sel]),
        test=tensors(x_te, y_te),
    )


def _load_digits(seed: int) -> Dataset:
    """scikit-learn's 8×8 digits, pixels scaled to [0, 1], fixed stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x / 16.0, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    tr, va, sel = _val_split(len(x_tr), seed, stratify=y_tr)

    def tensors(xs, ys):
        return ArrayDataset(
            torch.as_tensor(xs, dtype=torch.float32), torch.as_tensor(ys, dtype=torch.int64)
        )

    return Dataset(
        name="digits",
        kind="classification",
        num_outputs=10,
        input_shape=(64,),
        train=tensors(x_tr[tr], y_tr[tr]),
        val=tensors(x_tr[va], y_tr[va]),
        selection=tensors(x_tr[sel], y_tr[sel]),
        test=tensors(x_te, y_te),
    )


def _images(name, train_x, train_y, test_x, test_y, num_classes, seed) -> Dataset:
    """Stratified 10% validation split; only the training part is augmented."""
    train_x, test_x = torch.as_tensor(train_x), torch.as_tensor(test_x)
    train_y = torch.as_tensor(np.asarray(train_y), dtype=torch.int64)
    test_y = torch.as_tensor(np.asarray(test_y), dtype=torch.int64)
    tr, va, sel = (torch.as_tensor(i) for i in _val_split(len(train_y), seed, train_y.numpy()))
    mean, std = NORMALIZATION[name]
    augment = name != "mnist"
    return Dataset(
        name=name,
        kind="classification",
        num_outputs=num_classes,
        input_shape=tuple(train_x.shape[1:]),
        train=ImageDataset(train_x[tr], train_y[tr], mean, std, augment=augment),
        val=ImageDataset(train_x[va], train_y[va], mean, std),
        selection=ImageDataset(train_x[sel], train_y[sel], mean, std),
        test=ImageDataset(test_x, test_y, mean, std),
    )
