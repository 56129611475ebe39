"""The raw files behind the benchmark's data sets: where they live, how they are fetched, read.

Each reader takes the data folder and whether it may download, and returns arrays as
the files hold them, before any split or scaling (that is ``adaloss.bench.datasets``):
a regression reader returns features and targets, an image reader
``((train_x, train_y), (test_x, test_y), num_classes)`` with uint8 images (N, C, H, W).
A missing file is downloaded when allowed, else (or when that fails) a
FileNotFoundError says what to put where. diabetes ships with scikit-learn.

scikit-learn, scipy and torchvision are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

_CRIME_URL = (
    "https://archive.ics.uci.edu/ml/machine-learning-databases/communities/communities.data"
)
_CRIME_MD5 = "ec577679612ef8f5eddf850445c4359f"
_CALIFORNIA_URL = "https://ndownloader.figshare.com/files/5976036"  # as scikit-learn's fetcher


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """`data_dir` if given, else $ADALOSS_DATA, else ~/.cache/adaloss."""
    if data_dir is None:
        data_dir = os.environ.get("ADALOSS_DATA") or Path.home() / ".cache" / "adaloss"
    return Path(data_dir).expanduser()


def read_diabetes(root: Path, download: bool):
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True, scaled=False)


def read_crime(root: Path, download: bool):
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


def read_california(root: Path, download: bool):
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


def read_mnist(root: Path, download: bool):
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


def read_cifar10(root: Path, download: bool):
    train = [f"data_batch_{i}" for i in range(1, 6)]
    return (
        *_read_cifar(
            root, download, "CIFAR10", "cifar-10-batches-py", train, ["test_batch"], "labels"
        ),
        10,
    )


def read_cifar100(root: Path, download: bool):
    return (
        *_read_cifar(
            root, download, "CIFAR100", "cifar-100-python", ["train"], ["test"], "fine_labels"
        ),
        100,
    )


def read_svhn(root: Path, download: bool):
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


#: Regression data set -> reader returning (features, targets).
REGRESSION_READERS: dict[str, Callable[[Path, bool], tuple]] = {
    "diabetes": read_diabetes,
    "crime": read_crime,
    "california": read_california,
}
#: Image data set -> reader returning ((train_x, train_y), (test_x, test_y), num_classes).
IMAGE_READERS: dict[str, Callable[[Path, bool], tuple]] = {
    "mnist": read_mnist,
    "cifar10": read_cifar10,
    "cifar100": read_cifar100,
    "svhn": read_svhn,
}
