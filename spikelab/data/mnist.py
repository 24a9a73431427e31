"""MNIST from the four original IDX files (gzip-compressed or not); nothing is downloaded.

The loader accepts any data root holding ``train-images-idx3-ubyte.gz``,
``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``
(the uncompressed names without ``.gz`` work too). Every file's magic number, dimensions and
byte count are checked, and a missing, truncated or corrupt file raises
:class:`spikelab.errors.DataError` naming the file and the problem.

Example::

    from spikelab.data.mnist import load_mnist
    (x_train, y_train), (x_test, y_test) = load_mnist("../shared/datasets/mnist")
    x_train.shape, x_train.dtype   # (60000, 28, 28), torch.uint8
"""

from __future__ import annotations

import gzip
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from spikelab.errors import DataError

FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
# IDX magic numbers: 0x00000803 = unsigned bytes, 3 dimensions; 0x00000801 = bytes, 1 dimension.
_MAGIC = {"images": 0x0803, "labels": 0x0801}
_EXPECTED_COUNT = {"train": 60000, "test": 10000}


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise DataError(
        f"MNIST file {stem}.gz (or {stem}) not found in {root}; the data root must hold the four "
        "original IDX files (nothing is downloaded)"
    )


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read MNIST file {path}: {exc} (corrupt or truncated download?)") from exc


def read_idx(path: str | Path, kind: str) -> np.ndarray:
    """Parse one IDX file of ``kind`` "images" (N, 28, 28) or "labels" (N,) as uint8.

    Checks the magic number, the dimensions and that the payload has exactly the announced size.
    """
    path = Path(path)
    raw = _read_bytes(path)
    ndim = 3 if kind == "images" else 1
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"MNIST file {path} is truncated: {len(raw)} bytes, shorter than its header")
    magic = int.from_bytes(raw[0:4], "big")
    if magic != _MAGIC[kind]:
        raise DataError(
            f"MNIST file {path} has magic number {magic:#010x}, expected {_MAGIC[kind]:#010x} "
            f"for {kind} (wrong or corrupt file)"
        )
    dims = [int.from_bytes(raw[4 + 4 * d : 8 + 4 * d], "big") for d in range(ndim)]
    if kind == "images" and dims[1:] != [28, 28]:
        raise DataError(f"MNIST file {path} holds {dims[1]}x{dims[2]} images, expected 28x28")
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(
            f"MNIST file {path} has {len(raw)} bytes but its header announces {dims} "
            f"({expected} bytes): truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist(root: str | Path) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``((x_train, y_train), (x_test, y_test))``: uint8 images (N, 28, 28) and int64 labels (N,).

    Raises :class:`DataError` when ``root`` is missing, a file is missing or corrupt, or the
    image and label counts disagree. Parsed files are cached per process (keyed by their paths,
    sizes and modification times); every call returns fresh copies.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"MNIST data root {root} does not exist or is not a folder")
    paths = tuple(_find(root, FILES[key]) for key in sorted(FILES))
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    (xtr, ytr), (xte, yte) = _load(root, stamp)
    return (xtr.clone(), ytr.clone()), (xte.clone(), yte.clone())


@lru_cache(maxsize=2)
def _load(root: Path, stamp: tuple) -> tuple:
    out = []
    for split in ("train", "test"):
        images = read_idx(_find(root, FILES[(split, "images")]), "images")
        labels = read_idx(_find(root, FILES[(split, "labels")]), "labels")
        if len(images) != len(labels):
            raise DataError(
                f"MNIST {split} split in {root}: {len(images)} images but {len(labels)} labels"
            )
        if len(images) != _EXPECTED_COUNT[split]:
            raise DataError(
                f"MNIST {split} split in {root} has {len(images)} samples, expected "
                f"{_EXPECTED_COUNT[split]} (incomplete files?)"
            )
        if labels.max() > 9:
            raise DataError(f"MNIST {split} labels in {root} contain {labels.max()}; expected 0-9")
        out.append((torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))))
    return tuple(out)
