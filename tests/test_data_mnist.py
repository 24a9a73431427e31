"""MNIST IDX loader and the continual-learning scenarios built on it."""

import gzip
import hashlib
import shutil

import numpy as np
import pytest
import torch

from spikelab.data.continual import permuted_digits, permuted_mnist, split_mnist
from spikelab.data.mnist import FILES, load_mnist
from spikelab.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def mnist():
    from conftest import DATASETS

    root = DATASETS / "mnist"
    assert root.is_dir(), f"shared MNIST not found at {root}"
    return root, load_mnist(root)


def test_loads_real_mnist(mnist):
    root, ((xtr, ytr), (xte, yte)) = mnist
    assert xtr.shape == (60000, 28, 28) and xtr.dtype == torch.uint8
    assert xte.shape == (10000, 28, 28) and yte.shape == (10000,)
    # the published class counts of the MNIST training labels
    counts = torch.bincount(ytr, minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    # pixels match an independent parse of the raw gzip bytes (header 16 bytes)
    raw = np.frombuffer(gzip.open(root / "t10k-images-idx3-ubyte.gz").read(), dtype=np.uint8)
    assert np.array_equal(raw[16:].reshape(10000, 28, 28), xte.numpy())
    # and the files are the published ones
    sums = dict(line.split()[::-1] for line in (root / "MD5SUMS").read_text().splitlines() if line.strip())
    assert hashlib.md5((root / "t10k-labels-idx1-ubyte.gz").read_bytes()).hexdigest() == sums["t10k-labels-idx1-ubyte.gz"]


def _copy(root, tmp_path):
    for stem in FILES.values():
        shutil.copy(root / f"{stem}.gz", tmp_path / f"{stem}.gz")
    return tmp_path


def test_missing_folder_and_file(mnist, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    root = _copy(mnist[0], tmp_path)
    (root / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz .*not found"):
        load_mnist(root)


def test_truncated_corrupt_and_wrong_files(mnist, tmp_path):
    root = _copy(mnist[0], tmp_path)
    labels = root / "t10k-labels-idx1-ubyte.gz"
    data = gzip.open(labels).read()
    labels.write_bytes(gzip.compress(data[:-10]))  # valid gzip, payload short
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_mnist(root)
    labels.write_bytes(b"not a gzip file at all")
    with pytest.raises(DataError, match="cannot read"):
        load_mnist(root)
    labels.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + data[4:]))  # images magic in a labels file
    with pytest.raises(DataError, match="magic number"):
        load_mnist(root)
    # uncompressed files are accepted too
    labels.unlink()
    (root / "t10k-labels-idx1-ubyte").write_bytes(data)
    assert load_mnist(root)[1][1].shape == (10000,)


def test_permuted_mnist_all_tasks_permuted_and_seeded(mnist):
    root, ((xtr, ytr), _) = mnist
    sc = permuted_mnist(root, 3, seed=5, train_per_task=500, test_per_task=200)
    again = permuted_mnist(root, 3, seed=5, train_per_task=500, test_per_task=200)
    other = permuted_mnist(root, 3, seed=6, train_per_task=500, test_per_task=200)
    assert sc.n_tasks == 3 and sc.n_outputs == 10 and sc.input_size == 784 and sc.n_heads == 1
    perms = [e.permutation for e in sc.train_stream]
    for t, p in enumerate(perms):
        assert sorted(p.tolist()) == list(range(784))
        assert not torch.equal(p, torch.arange(784))  # the first task is permuted too
        assert torch.equal(p, again.train_stream[t].permutation)
        assert torch.equal(p, sc.test_stream[t].permutation)
        assert not torch.equal(p, other.train_stream[t].permutation)
    assert not torch.equal(perms[0], perms[1])
    x, y = sc.train_stream[1].batch(torch.arange(4))
    idx = sc.train_stream[1].inputs[:4]
    assert torch.allclose(x, idx.float()[:, perms[1]] / 255)
    assert x.shape == (4, 784) and 0 <= x.min() and x.max() <= 1
    assert len(sc.train_stream[0]) == 500 and len(sc.test_stream[2]) == 200


def test_settings_and_split_mnist(mnist):
    root = mnist[0]
    cls = permuted_mnist(root, 2, setting="class", train_per_task=100, test_per_task=50)
    assert cls.n_outputs == 20
    assert cls.train_stream[1].targets.min() >= 10 and cls.train_stream[0].targets.max() <= 9
    task = permuted_mnist(root, 2, setting="task", train_per_task=100, test_per_task=50)
    assert task.n_heads == 2 and task.n_outputs == 10

    split = split_mnist(root, 5, setting="class", train_per_task=300, test_per_task=100)
    assert [e.classes_in_this_experience for e in split.train_stream] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert set(split.train_stream[2].targets.tolist()) == {4, 5} and split.n_outputs == 10
    ti = split_mnist(root, 5, setting="task", class_order=[9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    assert ti.n_heads == 5 and ti.n_outputs == 2
    first = ti.train_stream[0]
    assert first.classes_in_this_experience == (9, 8)
    _, (_, yte) = mnist[1]
    assert len(ti.test_stream[0]) == int(((yte == 9) | (yte == 8)).sum())  # every test sample of the pair
    assert set(first.targets.tolist()) == {0, 1}
    with pytest.raises(ConfigError, match="n_tasks must be 1, 2, 5 or 10"):
        split_mnist(root, 3)
    with pytest.raises(ConfigError, match="permutation of the digits"):
        split_mnist(root, 5, class_order=[0, 1, 2])
    with pytest.raises(ConfigError, match="setting"):
        permuted_mnist(root, 2, setting="instance")


def test_permuted_digits_builtin():
    sc = permuted_digits(4, seed=0)
    assert sc.input_size == 64 and sc.n_tasks == 4
    total = len(sc.train_stream[0]) + len(sc.test_stream[0])
    assert total == 1797
    x, y = sc.test_stream[3].batch(slice(None))
    assert x.shape == (len(sc.test_stream[3]), 64) and 0 <= x.min() and x.max() <= 1
    assert torch.bincount(y, minlength=10).min() > 30  # stratified split keeps every digit
    with pytest.raises(ConfigError, match="train_per_task"):
        permuted_digits(2, train_per_task=10**6)
