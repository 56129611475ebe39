"""Benchmark data loaders: regression tables from ../shared/data, image datasets from
small files written here in their real on-disk formats (no network)."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from adaloss.bench import batching as B
from adaloss.bench import datasets as D
from adaloss.bench import readers as R
from adaloss.normalization import NORMALIZATION

# ----------------------------------------------------------------------------- helpers


def _shared_data_dir(sub: str) -> Path | None:
    """$ADALOSS_DATA or the shared data folder beside the repository, if it holds `sub`."""
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "data"]
    if os.environ.get("ADALOSS_DATA"):
        candidates.insert(0, Path(os.environ["ADALOSS_DATA"]))
    for c in candidates:
        if (c / sub).is_file():
            return c
    return None


def _data_dir_for(name: str) -> Path | None:
    sub = {"crime": "crime/communities.data", "california": "california/cal_housing.data"}
    if name not in sub:
        return None
    d = _shared_data_dir(sub[name])
    if d is None:
        pytest.skip(f"{sub[name]} not found in $ADALOSS_DATA or ../shared/data")
    return d


def _normalized(images_uint8: np.ndarray, name: str) -> torch.Tensor:
    mean, std = NORMALIZATION[name]
    x = torch.as_tensor(images_uint8).float() / 255
    return (x - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)


# ----------------------------------------------------------------------------- regression

REGRESSION = {"diabetes": (442, 10), "crime": (1994, 100), "california": (20640, 8)}


@pytest.fixture(scope="module")
def loaded():
    cache = {}

    def get(name: str, seed: int = 0) -> D.Dataset:
        if (name, seed) not in cache:
            cache[name, seed] = D.load_dataset(name, _data_dir_for(name), seed=seed, download=False)
        return cache[name, seed]

    return get


@pytest.mark.parametrize("name", list(REGRESSION))
def test_regression_shapes_and_scaling(loaded, name):
    n, f = REGRESSION[name]
    ds = loaded(name)
    assert (ds.kind, ds.num_outputs, ds.input_shape) == ("regression", 1, (f,))
    n_test = int(np.ceil(0.2 * n))
    n_sel = int(np.ceil(0.1 * (n - n_test)))
    n_val = int(np.ceil(0.1 * (n - n_test - n_sel)))
    sizes = (len(ds.train), len(ds.val), len(ds.selection), len(ds.test))
    assert sizes == (n - n_test - n_sel - n_val, n_val, n_sel, n_test)
    for split in (ds.train, ds.val, ds.selection, ds.test):
        assert split.x.dtype == split.y.dtype == torch.float32
        assert split.x.shape[1:] == (f,) and split.y.shape[1:] == (1,)
        assert torch.isfinite(split.x).all() and torch.isfinite(split.y).all()
    # statistics come from the training part (train + val + selection) only
    x_fit = torch.cat([ds.train.x, ds.val.x, ds.selection.x]).double()
    y_fit = torch.cat([ds.train.y, ds.val.y, ds.selection.y])
    assert x_fit.mean(0).abs().max() < 1e-5
    assert (x_fit.std(0, unbiased=False) - 1).abs().max() < 1e-4
    assert ds.train.x.double().mean(0).abs().max() < 0.2
    assert (y_fit.min(), y_fit.max()) == (0.0, 1.0)
    assert ds.train.y.min() >= 0 and ds.train.y.max() <= 1
    assert ds.test.y.min() > -0.5 and ds.test.y.max() < 1.5  # may slightly exceed [0, 1]


@pytest.mark.parametrize("name", list(REGRESSION))
def test_regression_splits_partition_the_data(loaded, name):
    ds = loaded(name)
    x, y = getattr(R, f"read_{name}")(_data_dir_for(name) or Path("."), False)
    raw = np.column_stack([x, y])
    splits = (ds.train, ds.val, ds.selection, ds.test)
    got = torch.cat([torch.cat([s.x, s.y], 1) for s in splits]).double()
    assert len(got) == len(raw) == len(np.unique(raw, axis=0))
    assert len(np.unique(got.numpy(), axis=0)) == len(raw)  # disjoint splits, no duplicates
    # each column is the raw column up to one increasing affine map: the same examples
    for j in range(raw.shape[1]):
        a, b = np.sort(raw[:, j]), np.sort(got[:, j].numpy())
        slope, icpt = np.polyfit(a, b, 1)
        assert slope > 0
        assert np.abs(slope * a + icpt - b).max() < 1e-4 * (np.abs(b).max() + 1)


@pytest.mark.parametrize("name", [*REGRESSION, "digits"])
def test_test_split_does_not_depend_on_seed(loaded, name):
    a, b = loaded(name, 0), loaded(name, 1)
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.val.x, b.val.x)
    # the selection split is fixed too: every seed and method is chosen on the same examples
    assert torch.equal(a.selection.x, b.selection.x) and torch.equal(a.selection.y, b.selection.y)
    fit_a, fit_b = torch.cat([a.train.x, a.val.x]), torch.cat([b.train.x, b.val.x])
    assert torch.equal(fit_a.sort(0).values, fit_b.sort(0).values)  # same pool, re-split


def test_california_derived_features():
    d = _shared_data_dir("california/cal_housing.data")
    if d is None:
        pytest.skip("california/cal_housing.data not found in $ADALOSS_DATA or ../shared/data")
    x, y = R.read_california(d, False)
    # first row of scikit-learn's fetch_california_housing()
    expected = [8.3252, 41.0, 6.98412698, 1.02380952, 322.0, 2.55555556, 37.88, -122.23]
    np.testing.assert_allclose(x[0], expected, rtol=1e-6)
    assert y[0] == pytest.approx(4.526)


def test_california_reads_file_without_header(tmp_path):
    (tmp_path / "california").mkdir()
    rows = "\n".join(
        f"-122.{i},37.{i},{20 + i},{800 + i},{100 + i},{300 + i},{120 + i},8.{i},{400000 + i}"
        for i in range(20)
    )
    (tmp_path / "california" / "cal_housing.data").write_text(rows + "\n")
    x, y = R.read_california(tmp_path, False)
    assert x.shape == (20, 8) and y[0] == pytest.approx(4.0)


def test_digits(loaded):
    ds = loaded("digits")
    assert (ds.kind, ds.num_outputs, ds.input_shape) == ("classification", 10, (64,))
    assert (len(ds.train), len(ds.val), len(ds.selection), len(ds.test)) == (1163, 130, 144, 360)
    assert ds.train.y.dtype == torch.int64 and ds.train.x.dtype == torch.float32
    assert 0 <= ds.train.x.min() and ds.train.x.max() <= 1
    counts = torch.bincount(ds.val.y, minlength=10)
    assert counts.min() >= 12 and counts.max() <= 15  # stratified: ~13 per class
    counts = torch.bincount(ds.selection.y, minlength=10)
    assert counts.min() >= 13 and counts.max() <= 16  # stratified: ~14.4 per class


# ----------------------------------------------------------------------------- image files


def _labels(n: int, classes: int) -> np.ndarray:
    return np.arange(n) % classes


def write_mnist(root: Path, n_train=100, n_test=20, gz=False) -> dict:
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = _labels(n, 10).astype(np.uint8)
        files = {
            f"{split}-images-idx3-ubyte": struct.pack(">IIII", 0x0803, n, 28, 28)
            + images.tobytes(),
            f"{split}-labels-idx1-ubyte": struct.pack(">II", 0x0801, n) + labels.tobytes(),
        }
        for fname, blob in files.items():
            if gz:
                (raw / f"{fname}.gz").write_bytes(gzip.compress(blob))
            else:
                (raw / fname).write_bytes(blob)
        out[split] = (images, labels)
    return out


def write_cifar10(root: Path, per_batch=20, n_test=20) -> dict:
    rng = np.random.default_rng(1)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    out = {"train": [], "test": None}
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = list(_labels(n, 10))
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "data": data, "labels": labels}, f)
        if name == "test_batch":
            out["test"] = (data, labels)
        else:
            out["train"].append((data, labels))
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)
    return out


def write_cifar100(root: Path, n_train=1000, n_test=100) -> dict:
    rng = np.random.default_rng(2)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for name, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = list(_labels(n, 100))
        entry = {"data": data, "fine_labels": fine, "coarse_labels": [i // 5 for i in fine]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
        out[name] = (data, fine)
    return out


def write_svhn(root: Path, n_train=100, n_test=20) -> dict:
    savemat = pytest.importorskip("scipy.io").savemat
    rng = np.random.default_rng(3)
    folder = root / "svhn"
    folder.mkdir(parents=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)  # H, W, C, N
        digits = _labels(n, 10)
        y = np.where(digits == 0, 10, digits).reshape(n, 1).astype(np.uint8)  # 10 means 0
        savemat(str(folder / f"{split}_32x32.mat"), {"X": x, "y": y})
        out[split] = (x, digits)
    return out


def _check_classification_splits(ds: D.Dataset, n_train: int, n_test: int, classes: int):
    n_sel = int(np.ceil(0.1 * n_train))
    n_val = int(np.ceil(0.1 * (n_train - n_sel)))
    sizes = (len(ds.train), len(ds.val), len(ds.selection), len(ds.test))
    assert sizes == (n_train - n_sel - n_val, n_val, n_sel, n_test)
    assert ds.kind == "classification" and ds.num_outputs == classes
    for split in (ds.val, ds.selection):
        if len(split) >= classes:  # stratified where every class fits (balanced labels written)
            counts = torch.bincount(split.targets, minlength=classes)
            assert counts.max() - counts.min() <= 1
    assert not ds.val.augment and not ds.selection.augment and not ds.test.augment
    x, y = ds.test[0]
    assert x.shape == ds.input_shape and x.dtype == torch.float32 and y.dtype == torch.int64


def test_mnist(tmp_path):
    files = write_mnist(tmp_path)
    ds = D.load_dataset("mnist", tmp_path, download=False)
    _check_classification_splits(ds, 100, 20, 10)
    assert ds.input_shape == (1, 28, 28) and not ds.train.augment
    images, labels = files["t10k"]
    x, y = B.full_batch(ds.test)
    torch.testing.assert_close(x, _normalized(images[:, None], "mnist"))
    assert torch.equal(y, torch.as_tensor(labels, dtype=torch.int64))


def test_mnist_reads_gzipped_idx_files(tmp_path):
    files = write_mnist(tmp_path, gz=True)
    ds = D.load_dataset("mnist", tmp_path, download=False)
    assert torch.equal(ds.test.images[:, 0], torch.as_tensor(files["t10k"][0]))


def test_cifar10(tmp_path):
    files = write_cifar10(tmp_path)
    ds = D.load_dataset("cifar10", tmp_path, download=False)
    _check_classification_splits(ds, 100, 20, 10)
    assert ds.input_shape == (3, 32, 32) and ds.train.augment
    data, labels = files["test"]
    x, y = B.full_batch(ds.test)
    # CIFAR rows: 1024 red values, then green, then blue, each a row-major 32×32 plane
    torch.testing.assert_close(x, _normalized(data.reshape(-1, 3, 32, 32), "cifar10"))
    assert y.tolist() == labels
    # train + val + selection together are exactly the five training batches
    train = np.concatenate([d for d, _ in files["train"]]).reshape(-1, 3, 32, 32)
    parts = [ds.train.images, ds.val.images, ds.selection.images]
    got = torch.cat(parts).reshape(len(train), -1).numpy()
    assert len(np.unique(np.concatenate([got, train.reshape(len(train), -1)]), axis=0)) == 100


def test_cifar100(tmp_path):
    files = write_cifar100(tmp_path)
    ds = D.load_dataset("cifar100", tmp_path, download=False, seed=3)
    _check_classification_splits(ds, 1000, 100, 100)
    assert ds.input_shape == (3, 32, 32)
    assert ds.test.targets.tolist() == files["test"][1]


def test_svhn(tmp_path):
    files = write_svhn(tmp_path)
    ds = D.load_dataset("svhn", tmp_path, download=False)
    _check_classification_splits(ds, 100, 20, 10)
    assert ds.input_shape == (3, 32, 32) and ds.train.augment
    x_hwcn, digits = files["test"]
    for i in (0, 7):
        expected = np.moveaxis(x_hwcn[..., i], 2, 0)  # image i as (C, H, W)
        torch.testing.assert_close(ds.test[i][0], _normalized(expected, "svhn"))
    assert ds.test.targets.tolist() == digits.tolist()  # label 10 read as digit 0


@pytest.mark.parametrize(
    "name, expected",
    [
        ("mnist", ["MNIST", "raw", "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]),
        ("cifar10", ["cifar-10-batches-py", "data_batch_1", "data_batch_5", "test_batch"]),
        ("cifar100", ["cifar-100-python", "train", "test"]),
        ("svhn", ["svhn", "train_32x32.mat", "test_32x32.mat"]),
        ("crime", ["crime", "communities.data"]),
        ("california", ["california", "cal_housing.data"]),
    ],
)
def test_missing_files_raise_clear_error(tmp_path, name, expected):
    with pytest.raises(FileNotFoundError) as info:
        D.load_dataset(name, tmp_path, download=False)
    msg = str(info.value)
    assert str(tmp_path) in msg and "download=True" in msg
    for word in expected:
        assert word in msg


def test_partly_missing_files_name_the_missing_ones(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3") as info:
        D.load_dataset("cifar10", tmp_path, download=False)
    assert "data_batch_1" not in str(info.value)


# ----------------------------------------------------------------------------- augmentation


def _is_crop_and_flip(aug: torch.Tensor, plain: torch.Tensor, pad: int = 4) -> bool:
    """Is `aug` some 32×32 crop of the zero-padded `plain`, possibly flipped?"""
    padded = torch.nn.functional.pad(plain, (pad,) * 4)
    h, w = plain.shape[-2:]
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy : dy + h, dx : dx + w]
            if torch.equal(crop, aug) or torch.equal(crop.flip(-1), aug):
                return True
    return False


@pytest.fixture
def cifar(tmp_path) -> D.Dataset:
    write_cifar10(tmp_path)
    return D.load_dataset("cifar10", tmp_path, download=False)


def test_augmentation_on_train_only(cifar):
    torch.manual_seed(0)
    # val and test: deterministic, normalization only
    for split in (cifar.val, cifar.test):
        assert torch.equal(split[3][0], split[3][0])
        torch.testing.assert_close(split[3][0], _normalized(split.images[3].numpy(), "cifar10"))
    # train: a random crop + flip of the raw image (compare on the [0, 1] scale)
    idx = torch.arange(len(cifar.train))
    aug, y = cifar.train.batch(idx, torch.Generator().manual_seed(0))
    plain, y2 = cifar.train.batch(idx, augment=False)
    assert torch.equal(y, y2) and aug.shape == plain.shape == (len(idx), 3, 32, 32)
    assert (aug != plain).flatten(1).any(1).float().mean() > 0.9  # P(identity) = 1/162
    mean, std = (torch.tensor(v).view(-1, 1, 1) for v in NORMALIZATION["cifar10"])
    unnorm = cifar.train.images[idx].float() / 255
    for i in range(0, len(idx), 9):
        aug01 = (aug[i] * std + mean).mul(255).round() / 255
        assert _is_crop_and_flip(aug01, unnorm[i])
    a, b = cifar.train[5][0], cifar.train[5][0]  # fresh randomness per access
    c = cifar.train[5][0]
    assert not (torch.equal(a, b) and torch.equal(b, c))


def test_augmentation_matches_torchvision_semantics():
    """With the draws fixed, our batched crop+flip equals torchvision's per-image ops."""
    tf = pytest.importorskip("torchvision.transforms.functional")
    x = torch.rand(6, 3, 32, 32)
    gen = torch.Generator().manual_seed(4)
    out = B._crop_and_flip(x, 4, gen)
    gen = torch.Generator().manual_seed(4)
    dy = torch.randint(0, 9, (6,), generator=gen)
    dx = torch.randint(0, 9, (6,), generator=gen)
    flip = torch.rand(6, generator=gen) < 0.5
    for i in range(6):
        ref = tf.crop(tf.pad(x[i], [4]), int(dy[i]), int(dx[i]), 32, 32)
        if flip[i]:
            ref = tf.hflip(ref)
        assert torch.equal(out[i], ref)


# ----------------------------------------------------------------------------- batching


def _take(it, k):
    return [next(it) for _ in range(k)]


def _same(a, b) -> bool:
    """Two lists of (x, y) batches are equal."""
    return len(a) == len(b) and all(
        torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b, strict=True)
    )


def test_batches_reproducible_and_seed_dependent(loaded):
    ds = loaded("diabetes").train
    a = _take(B.batches(ds, 32, seed=7), 15)
    b = _take(B.batches(ds, 32, seed=7), 15)
    c = _take(B.batches(ds, 32, seed=8), 15)
    assert _same(a, b)
    assert not _same(a, c)
    assert all(x.shape == (32, 10) and y.shape == (32, 1) for x, y in a)


@pytest.mark.parametrize("batch_size", [1, 7, 32, 100, 250])
def test_batches_cover_each_example_once_per_epoch(batch_size):
    n = 100
    ds = B.ArrayDataset(torch.arange(n).float()[:, None], torch.arange(n))
    epochs = 3
    k = -(-epochs * n // batch_size)
    ys = torch.cat([y for _, y in _take(B.batches(ds, batch_size, seed=0), k)])
    assert len(ys) == k * batch_size
    for e in range(epochs):
        assert sorted(ys[e * n : (e + 1) * n].tolist()) == list(range(n))
    first, second = ys[:n], ys[n : 2 * n]
    assert not torch.equal(first, second)  # reshuffled every epoch


def test_batches_on_images_reproducible_including_augmentation(cifar):
    a = _take(B.batches(cifar.train, 16, seed=1), 8)
    b = _take(B.batches(cifar.train, 16, seed=1), 8)
    assert _same(a, b)
    assert a[0][0].shape == (16, 3, 32, 32) and a[0][1].dtype == torch.int64


def test_batches_on_any_map_style_dataset():
    base = torch.utils.data.TensorDataset(torch.arange(10).float(), torch.arange(10))
    ys = torch.cat([y for _, y in _take(B.batches(base, 4, seed=0), 5)])
    assert sorted(ys[:10].tolist()) == list(range(10))
    ours = B.ArrayDataset(*base.tensors)
    ref = torch.cat([y for _, y in _take(B.batches(ours, 4, seed=0), 5)])
    assert torch.equal(ys, ref)  # same order as the fast path


def test_eval_batches_and_full_batch(cifar):
    chunks = list(B.eval_batches(cifar.train, batch_size=32))
    assert [len(y) for _, y in chunks] == [32, 32, 17]  # 81 = 100 - 10 selection - 9 val
    x, y = B.full_batch(cifar.train)
    assert torch.equal(torch.cat([c[0] for c in chunks]), x)  # ordered, unaugmented
    assert torch.equal(y, cifar.train.targets)
    torch.testing.assert_close(x[0], _normalized(cifar.train.images[0].numpy(), "cifar10"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batches_on_cuda(cifar):
    cpu = _take(B.batches(cifar.train, 16, seed=2), 3)
    gpu = _take(B.batches(cifar.train, 16, seed=2, device="cuda"), 3)
    for (xc, yc), (xg, yg) in zip(cpu, gpu, strict=True):
        assert xg.is_cuda and torch.equal(yc, yg.cpu())
        torch.testing.assert_close(xc, xg.cpu())


# ----------------------------------------------------------------------------- misc


def test_resolve_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("ADALOSS_DATA", str(tmp_path / "env"))
    assert R.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert R.resolve_data_dir("~/x") == Path.home() / "x"
    assert R.resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("ADALOSS_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert R.resolve_data_dir(None) == tmp_path / "home" / ".cache" / "adaloss"


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset"):
        D.load_dataset("imagenet")


def test_module_import_is_light():
    code = (
        "import sys, adaloss.bench.datasets; "
        "print([m for m in ('sklearn', 'scipy', 'torchvision') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_failed_download_is_reported(tmp_path, monkeypatch):
    import torchvision.datasets
    import torchvision.datasets.utils

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", offline)
    for name in ("cifar10", "crime", "california"):
        with pytest.raises(FileNotFoundError, match="Download failed: OSError: no network"):
            D.load_dataset(name, tmp_path, download=True)


def test_download_paths_put_files_where_they_are_read(tmp_path, monkeypatch):
    """The download branches, with the network replaced by local writers."""
    import tarfile

    import torchvision.datasets
    import torchvision.datasets.utils

    def fake_cifar10(root, train=True, download=False):
        assert download
        write_cifar10(Path(root))

    rows = [
        f"-122.{i},37.{i},{20 + i},{800 + i},{100 + i},{300 + i},{120 + i},8.{i},{4000 * i}"
        for i in range(1, 31)
    ]
    crime_rows = [
        ",".join(["1", "?", "?", f"town{i}", "1", *(f"0.{(i * j) % 10}" for j in range(123))])
        for i in range(40)
    ]

    def fake_download_url(url, root, filename=None, md5=None):
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        if filename == "communities.data":
            assert md5 == R._CRIME_MD5
            (root / filename).write_text("\n".join(crime_rows) + "\n")
        else:  # the California archive, laid out as on figshare (no header line)
            src = tmp_path / "CaliforniaHousing"
            src.mkdir(exist_ok=True)
            (src / "cal_housing.data").write_text("\n".join(rows) + "\n")
            with tarfile.open(root / filename, "w:gz") as tar:
                tar.add(src, arcname="CaliforniaHousing")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fake_cifar10)
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", fake_download_url)
    data = tmp_path / "data"
    assert len(D.load_dataset("cifar10", data, download=True).test) == 20
    assert D.load_dataset("california", data, download=True).input_shape == (8,)
    assert D.load_dataset("crime", data, download=True).input_shape == (122,)


def test_to_device_copies_once():
    ds = B.ArrayDataset(torch.zeros(4, 2), torch.zeros(4, 1))
    assert ds.to(None) is ds and ds.to("cpu") is ds
    moved = ds.to("meta")
    assert moved.x.device.type == "meta" and ds.to("meta") is moved
    img = B.ImageDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2), (0.5,), (0.2,))
    assert img.to("cpu") is img and img.to("meta") is img.to("meta")


# ----------------------------------------------------------------------------- label noise


@pytest.mark.parametrize("name", ["diabetes", "digits"])
def test_corrupted_targets_touch_the_training_split_only(loaded, name):
    clean = loaded(name)
    noisy = D.corrupt_training_targets(clean, 0.3, seed=1)
    for split in ("val", "selection", "test"):
        assert getattr(noisy, split) is getattr(clean, split)
    assert torch.equal(noisy.train.x, clean.train.x)
    changed = (noisy.train.y != clean.train.y).reshape(len(clean.train), -1).any(1)
    n = len(clean.train)
    if name == "digits":  # a drawn class equals the true one 1 time in 10
        assert 0.3 * 0.8 * n < changed.sum() <= round(0.3 * n)
        assert noisy.train.y.dtype == torch.int64
        assert 0 <= noisy.train.y.min() and noisy.train.y.max() <= 9
    else:
        assert changed.sum() == round(0.3 * n)
        assert 0 <= noisy.train.y.min() and noisy.train.y.max() <= 1
    assert not torch.equal(clean.train.y, D.corrupt_training_targets(clean, 0.3, 1).train.y)
    assert torch.equal(noisy.train.y, D.corrupt_training_targets(clean, 0.3, 1).train.y)
    assert not torch.equal(noisy.train.y, D.corrupt_training_targets(clean, 0.3, 2).train.y)
    assert D.corrupt_training_targets(clean, 0.0, 1) is clean


def test_corrupted_image_labels_keep_the_augmentation():
    images = torch.zeros(50, 3, 8, 8, dtype=torch.uint8)
    train = B.ImageDataset(images, torch.arange(50) % 10, (0.5,) * 3, (0.2,) * 3, augment=True)
    data = D.Dataset("toy", "classification", 10, (3, 8, 8), train, train, train, train)
    noisy = D.corrupt_training_targets(data, 0.5, seed=0).train
    assert noisy.augment and noisy.images is images and noisy.mean == train.mean
    assert (noisy.targets != train.targets).sum() > 10


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
@pytest.mark.parametrize(
    "split, what", [(D.corrupt_training_targets, "corrupted"), (D.hold_out_check, "check")]
)
def test_a_fraction_out_of_range_is_refused(loaded, split, what, fraction):
    with pytest.raises(ValueError, match=rf"the {what} fraction must be in \[0, 1\)"):
        split(loaded("diabetes"), fraction, seed=0)


# ----------------------------------------------------------------------------- check split


@pytest.mark.parametrize("name", ["diabetes", "digits"])
def test_the_check_split_is_carved_out_of_validation_only(loaded, name):
    data = loaded(name)
    carved = D.hold_out_check(data, 0.5, seed=3)
    for split in ("train", "selection", "test"):
        assert getattr(carved, split) is getattr(data, split)
    assert len(carved.val) + len(carved.check) == len(data.val)
    assert abs(len(carved.check) - len(data.val) / 2) <= 1
    rows = {tuple(r) for r in data.val.x.tolist()}
    kept, held = ({tuple(r) for r in part.x.tolist()} for part in (carved.val, carved.check))
    assert kept | held == rows and not kept & held  # a partition: no example on both sides
    if name == "digits":  # stratified: every class on both sides
        assert set(carved.check.y.tolist()) == set(carved.val.y.tolist()) == set(range(10))
    assert torch.equal(carved.check.x, D.hold_out_check(data, 0.5, seed=3).check.x)
    assert not torch.equal(carved.check.x, D.hold_out_check(data, 0.5, seed=4).check.x)
    assert D.hold_out_check(data, 0.0, seed=3) is data and data.check is None


@pytest.mark.parametrize("name", ["diabetes", "digits"])
def test_a_check_split_can_come_from_training_instead(loaded, name):
    data = loaded(name)
    carved = D.hold_out_check(data, 0.05, seed=3, source="train")
    for split in ("val", "selection", "test"):
        assert getattr(carved, split) is getattr(data, split)
    assert len(carved.train) + len(carved.check) == len(data.train)
    assert abs(len(carved.check) - 0.05 * len(data.train)) <= 1
    kept, held = ({tuple(r) for r in part.x.tolist()} for part in (carved.train, carved.check))
    assert kept | held == {tuple(r) for r in data.train.x.tolist()} and not kept & held
    with pytest.raises(ValueError, match="from 'val' or 'train', got 'test'"):
        D.hold_out_check(data, 0.05, seed=3, source="test")


def test_a_check_split_needs_tensor_validation_data():
    images = torch.zeros(20, 3, 8, 8, dtype=torch.uint8)
    split = B.ImageDataset(images, torch.arange(20) % 10, (0.5,) * 3, (0.2,) * 3)
    data = D.Dataset("toy", "classification", 10, (3, 8, 8), split, split, split, split)
    with pytest.raises(ValueError, match="tensor val split, got ImageDataset"):
        D.hold_out_check(data, 0.5, seed=0)
