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
normalized. `batches` gives reproducible infinite batch streams, `eval_batches` one
ordered, unaugmented pass for evaluation.

scikit-learn, scipy and torchvision are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from adaloss.normalization import NORMALIZATION

__all__ = [
    "DATASETS",
    "NORMALIZATION",
    "ArrayDataset",
    "Dataset",
    "ImageDataset",
    "batches",
    "eval_batches",
    "full_batch",
    "load_dataset",
    "resolve_data_dir",
]

DATASETS = ("diabetes", "crime", "california", "digits", "mnist", "cifar10", "cifar100", "svhn")

SPLIT_SEED = 0
"""random_state of the fixed 80/20 train/test split of the datasets that have none."""

VAL_FRACTION = 0.1
SELECTION_FRACTION = 0.1
TEST_FRACTION = 0.2


_CRIME_URL = (
    "https://archive.ics.uci.edu/ml/machine-learning-databases/communities/communities.data"
)
_CRIME_MD5 = "ec577679612ef8f5eddf850445c4359f"
_CALIFORNIA_URL = "https://ndownloader.figshare.com/files/5976036"  # as scikit-learn's fetcher


# --------------------------------------------------------------------------- structures


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


# --------------------------------------------------------------------------- batching


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


# --------------------------------------------------------------------------- loading


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """`data_dir` if given, else $ADALOSS_DATA, else ~/.cache/adaloss."""
    if data_dir is None:
        data_dir = os.environ.get("ADALOSS_DATA") or Path.home() / ".cache" / "adaloss"
    return Path(data_dir).expanduser()


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
    if name in ("diabetes", "crime", "california"):
        root = resolve_data_dir(data_dir)
        x, y = {"diabetes": _read_diabetes, "crime": _read_crime, "california": _read_california}[
            name
        ](root, download)
        return _regression(name, x, y, seed)
    root = resolve_data_dir(data_dir)
    (train_x, train_y), (test_x, test_y), num_classes = {
        "mnist": _read_mnist,
        "cifar10": _read_cifar10,
        "cifar100": _read_cifar100,
        "svhn": _read_svhn,
    }[name](root, download)
    return _images(name, train_x, train_y, test_x, test_y, num_classes, seed)


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


def _read_diabetes(root: Path, download: bool):
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True, scaled=False)


def _read_crime(root: Path, download: bool):
    """UCI Communities and Crime: drop the 5 non-predictive attributes and every
    attribute with a missing value (`?`); the last attribute is the target."""
    path = root / "crime" / "communities.data"
    if not path.is_file():
        _download_file(download, path, _CRIME_URL, _CRIME_MD5, "UCI Communities and Crime")
    rows = [line.rstrip("\r\n").split(",") for line in path.read_text().splitlines() if line]
    if {len(r) for r in rows} != {128}:
        raise ValueError(f"{path}: expected 128 comma-separated attributes per row")
    cols = [c for c in zip(*(r[5:] for r in rows), strict=True) if "?" not in c]
    table = np.array(cols, dtype=np.float64).T
    return table[:, :-1], table[:, -1]


def _read_california(root: Path, download: bool):
    """StatLib California housing, with scikit-learn's 8 derived features."""
    path = root / "california" / "cal_housing.data"
    if not path.is_file():
        _download_california(download, path)
    with open(path) as f:
        first = f.readline().split(",")[0]
    try:  # the original file has no header line; some copies name the columns
        float(first)
        header = False
    except ValueError:
        header = True
    t = np.loadtxt(path, delimiter=",", skiprows=int(header), ndmin=2)
    if t.shape[1] != 9:
        raise ValueError(f"{path}: expected 9 columns, got {t.shape[1]}")
    lon, lat, age, rooms, bedrooms, population, households, income, value = t.T
    x = np.stack(
        [
            income,  # MedInc
            age,  # HouseAge
            rooms / households,  # AveRooms
            bedrooms / households,  # AveBedrms
            population,  # Population
            population / households,  # AveOccup
            lat,  # Latitude
            lon,  # Longitude
        ],
        axis=1,
    )
    return x, value / 100_000


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


# --------------------------------------------------------------------------- image files


def _missing(paths: list[Path]) -> list[Path]:
    return [p for p in paths if not p.is_file()]


def _not_found(what: str, folder: Path, files: list[str], how: str, error: Exception | None):
    msg = (
        f"{what} not found: put {', '.join(files)} in {folder} ({how}), or call with "
        "download=True where the network is reachable."
    )
    if error is not None:
        msg += f" Download failed: {type(error).__name__}: {error}"
    return FileNotFoundError(msg)


def _ensure(what, folder, names, how, download, fetch) -> None:
    """Raise a clear FileNotFoundError unless `folder`/`names` exist (after `fetch`)."""
    paths = [folder / n for n in names]
    if not _missing(paths):
        return
    error = None
    if download:
        try:
            fetch()
        except Exception as e:  # network, checksum or archive errors
            error = e
    if _missing(paths):
        raise _not_found(what, folder, [p.name for p in _missing(paths)], how, error)


def _download_file(download: bool, path: Path, url: str, md5: str | None, what: str) -> None:
    def fetch():
        from torchvision.datasets.utils import download_url

        download_url(url, str(path.parent), path.name, md5)

    _ensure(what, path.parent, [path.name], f"from {url}", download, fetch)


def _download_california(download: bool, path: Path) -> None:
    def fetch():
        import shutil
        import tarfile

        from torchvision.datasets.utils import download_url

        folder = path.parent
        download_url(_CALIFORNIA_URL, str(folder), "cal_housing.tgz")
        with tarfile.open(folder / "cal_housing.tgz") as tar:
            member = tar.extractfile("CaliforniaHousing/cal_housing.data")
            with open(path, "wb") as out:
                shutil.copyfileobj(member, out)

    how = f"StatLib cal_housing.data, e.g. from the archive at {_CALIFORNIA_URL}"
    _ensure("California housing", path.parent, [path.name], how, download, fetch)


def _read_mnist(root: Path, download: bool):
    """MNIST idx files in <root>/MNIST/raw/ (unpacked, or .gz next to them)."""
    from torchvision.datasets.mnist import read_image_file, read_label_file
    from torchvision.datasets.utils import extract_archive

    raw = root / "MNIST" / "raw"
    names = [
        f"{s}-{k}" for s in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")
    ]
    for n in names:  # files put there by hand are often still gzipped
        if not (raw / n).is_file() and (raw / f"{n}.gz").is_file():
            extract_archive(str(raw / f"{n}.gz"), str(raw))

    def fetch():
        from torchvision.datasets import MNIST

        MNIST(str(root), train=True, download=True)

    how = "the four idx files from the MNIST site, gzipped or not"
    _ensure("MNIST", raw, names, how, download, fetch)
    read = [
        read_image_file(str(raw / n)) if "images" in n else read_label_file(str(raw / n))
        for n in names
    ]
    return (read[0][:, None], read[1]), (read[2][:, None], read[3]), 10


def _read_cifar(root: Path, download: bool, cls_name: str, folder: str, train, test, label_key):
    def fetch():
        import torchvision.datasets

        getattr(torchvision.datasets, cls_name)(str(root), train=True, download=True)

    how = "the python version of the archive from https://www.cs.toronto.edu/~kriz/cifar.html"
    _ensure(cls_name, root / folder, train + test, how, download, fetch)

    def read(files):
        xs, ys = [], []
        for n in files:
            with open(root / folder / n, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
            xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(entry[label_key], dtype=np.int64))
        return torch.from_numpy(np.concatenate(xs)), np.concatenate(ys)

    return read(train), read(test)


def _read_cifar10(root: Path, download: bool):
    train = [f"data_batch_{i}" for i in range(1, 6)]
    return (
        *_read_cifar(
            root, download, "CIFAR10", "cifar-10-batches-py", train, ["test_batch"], "labels"
        ),
        10,
    )


def _read_cifar100(root: Path, download: bool):
    return (
        *_read_cifar(
            root, download, "CIFAR100", "cifar-100-python", ["train"], ["test"], "fine_labels"
        ),
        100,
    )


def _read_svhn(root: Path, download: bool):
    """SVHN cropped digits, <root>/svhn/{train,test}_32x32.mat; label 10 means digit 0."""
    folder = root / "svhn"

    def fetch():
        from torchvision.datasets import SVHN

        for split in ("train", "test"):
            if not (folder / f"{split}_32x32.mat").is_file():
                SVHN(str(folder), split=split, download=True)

    names = ["train_32x32.mat", "test_32x32.mat"]
    how = "format 2 (cropped digits) from http://ufldl.stanford.edu/housenumbers/"
    _ensure("SVHN", folder, names, how, download, fetch)

    def read(n):
        from scipy.io import loadmat

        mat = loadmat(str(folder / n))
        x = torch.from_numpy(np.ascontiguousarray(np.transpose(mat["X"], (3, 2, 0, 1))))
        y = mat["y"].astype(np.int64).reshape(-1) % 10
        return x, y

    return read(names[0]), read(names[1]), 10
