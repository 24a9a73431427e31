"""Traverses for visual place recognition: folders of images, ground truth, preprocessing, encoding.

A *traverse* is one drive along a route, stored as a folder of images whose sorted file names
give the frame order. Place recognition matches every image of a *query* traverse against the
images of one or more *reference* traverses.

Preprocessing (as the ICRA 2023 ensemble code and SAD baselines do it): grayscale, bilinear
resize (PIL) to 28x28, patch normalisation with a 7x7 window (subtract the window's mean,
divide by its standard deviation, windows cut at the border, clip to [-1, 1]), rescale to
8-bit and then to [0, 1]. Encoding: Poisson spike trains with rate proportional to
intensity, ``f_max = 63.75`` Hz for intensity 1 (pixel 255 divided by the reference's
intensity factor 4).

Ground truth is a boolean matrix ``gt`` (Q, R): ``gt[q, r]`` says reference ``r`` shows the
place of query ``q``. It is built from frame identity (aligned traverses) with a tolerance in
frames, or read from a CSV of ``query,reference`` index pairs, or from a ``.npy`` boolean matrix.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, UnidentifiedImageError

from spikelab.encoding import PoissonEncoder
from spikelab.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")

#: Input rate (Hz) of a pixel of intensity 1 in the reference code (255 / 4).
F_MAX = 63.75


def image_files(folder: str | Path) -> list[Path]:
    """Image files of ``folder`` in sorted name order; ``DataError`` if missing or empty."""
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"traverse folder {folder} does not exist")
    if not folder.is_dir():
        raise DataError(f"traverse {folder} is not a folder of images")
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"traverse folder {folder} contains no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def read_grayscale(folder: str | Path) -> tuple[np.ndarray, list[str]]:
    """All images of a traverse as 8-bit grayscale (N, H, W) and their file names.

    ``DataError`` for an unreadable image or images of different sizes.
    """
    files = image_files(folder)
    images, size = [], None
    for f in files:
        try:
            with Image.open(f) as im:
                gray = im.convert("L")
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"cannot read image {f}: {exc}") from None
        if size is None:
            size = gray.size
        elif gray.size != size:
            raise DataError(
                f"images of {Path(folder)} differ in size: {files[0].name} is {size[0]}x{size[1]}, "
                f"{f.name} is {gray.size[0]}x{gray.size[1]} (width x height)"
            )
        images.append(np.asarray(gray, dtype=np.uint8))
    return np.stack(images), [f.name for f in files]


def patch_normalise(image: np.ndarray, patch: int = 7) -> np.ndarray:
    """Local contrast normalisation in [-1, 1]: ``(x - mean) / std`` over a ``patch`` x ``patch``
    window (cut at the borders), 0 where the window is flat. ``image`` (H, W) or (N, H, W)."""
    if patch < 1 or patch % 2 == 0:
        raise ValueError(f"patch size must be a positive odd number, got {patch}")
    x = np.asarray(image, dtype=np.float64)
    h = patch // 2
    pad = [(0, 0)] * (x.ndim - 2) + [(h, h), (h, h)]
    windows = sliding_window_view(np.pad(x, pad), (patch, patch), axis=(-2, -1))
    inside = sliding_window_view(np.pad(np.ones(x.shape[-2:]), h), (patch, patch))  # window part inside the image
    count = inside.sum(axis=(-1, -2))
    mu = windows.sum(axis=(-1, -2)) / count
    dev = (windows - mu[..., None, None]) * inside
    sd = np.sqrt((dev * dev).sum(axis=(-1, -2)) / count)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (x - mu) / sd
    out[~np.isfinite(out)] = 0.0
    return np.clip(out, -1.0, 1.0)


def preprocess(images: np.ndarray, size: tuple[int, int] = (28, 28), patch: int = 7) -> np.ndarray:
    """Grayscale uint8 images (N, H, W) -> float images (N, h, w) in [0, 1].

    Bilinear resize to ``size`` = (height, width), patch normalisation (``patch`` = 0 skips
    it), 8-bit quantisation as in the reference code, then division by 255.
    """
    h, w = size
    small = np.stack([
        np.asarray(Image.fromarray(np.asarray(img, np.uint8)).resize((w, h), Image.BILINEAR), np.float64)
        for img in images
    ]) if len(images) else np.zeros((0, h, w))
    if patch:
        for a in range(0, len(small), 256):
            small[a : a + 256] = np.uint8(255.0 * (1.0 + patch_normalise(small[a : a + 256], patch)) / 2.0)
    return small / 255.0


@dataclass
class Traverse:
    """One traverse: preprocessed ``images`` (N, h, w) in [0, 1], raw grayscale ``raw`` (N, H, W), file ``names``."""

    folder: Path
    images: np.ndarray
    raw: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def select(self, index: np.ndarray) -> "Traverse":
        """The frames ``index`` (in that order)."""
        return Traverse(self.folder, self.images[index], self.raw[index], [self.names[i] for i in index])


def load_traverse(folder: str | Path, size: tuple[int, int] = (28, 28), patch: int = 7) -> Traverse:
    """Read and preprocess a folder of images (see :func:`preprocess`)."""
    raw, names = read_grayscale(folder)
    return Traverse(Path(folder), preprocess(raw, size, patch), raw, names)


def contrast_mask(raw: np.ndarray, min_std: float) -> np.ndarray:
    """True for frames whose raw grayscale pixel standard deviation is at least ``min_std``
    (drops tunnels, stations and other near-uniform frames)."""
    return np.asarray(raw, np.float64).reshape(len(raw), -1).std(axis=1) >= min_std


def identity_ground_truth(n_query: int, n_reference: int, tolerance: int = 0) -> np.ndarray:
    """``gt[q, r] = |q - r| <= tolerance`` for frame-aligned traverses of equal length."""
    if n_query != n_reference:
        raise DataError(
            f"query ({n_query} images) and reference ({n_reference} images) differ in length: "
            "frame-identity ground truth needs aligned traverses; give a ground-truth file"
        )
    if tolerance < 0:
        raise DataError(f"tolerance must be >= 0 frames, got {tolerance}")
    idx = np.arange(n_query)
    return np.abs(idx[:, None] - idx[None, :]) <= tolerance


def dilate(gt: np.ndarray, tolerance: int) -> np.ndarray:
    """Widen every true match by ``tolerance`` frames along the reference axis."""
    out = gt.copy()
    for k in range(1, tolerance + 1):
        out[:, k:] |= gt[:, :-k]
        out[:, :-k] |= gt[:, k:]
    return out


def load_ground_truth(path: str | Path, n_query: int, n_reference: int, tolerance: int = 0) -> np.ndarray:
    """Ground truth (Q, R) from a file, widened by ``tolerance`` frames.

    ``.npy``: a boolean (or 0/1) matrix of shape (Q, R). ``.csv``: rows ``query,reference``
    of 0-based frame indices (a header line is allowed; a query may have several rows).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"ground-truth file {path} does not exist")
    if path.suffix.lower() == ".npy":
        try:
            gt = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"cannot read ground-truth matrix {path}: {exc}") from None
        if gt.shape != (n_query, n_reference):
            raise DataError(
                f"ground-truth matrix {path} has shape {gt.shape}; expected (queries, references) = "
                f"({n_query}, {n_reference})"
            )
        if not np.isin(gt, (0, 1)).all():
            raise DataError(f"ground-truth matrix {path} must be boolean (0/1)")
        gt = gt.astype(bool)
    elif path.suffix.lower() == ".csv":
        gt = np.zeros((n_query, n_reference), bool)
        with open(path, newline="") as f:
            for line_no, row in enumerate(csv.reader(f), 1):
                if not row or not "".join(row).strip():
                    continue
                try:
                    q, r = (int(v) for v in row[:2])
                except ValueError:
                    if line_no == 1:
                        continue  # header
                    raise DataError(f"{path}:{line_no}: expected two integers 'query,reference', got {row}") from None
                if not (0 <= q < n_query and 0 <= r < n_reference):
                    raise DataError(
                        f"{path}:{line_no}: pair ({q}, {r}) outside {n_query} queries x {n_reference} references"
                    )
                gt[q, r] = True
    else:
        raise DataError(f"ground-truth file {path}: use a .csv of index pairs or a .npy boolean matrix")
    if tolerance < 0:
        raise DataError(f"tolerance must be >= 0 frames, got {tolerance}")
    return dilate(gt, tolerance)


def poisson_rates(images: np.ndarray, f_max: float = F_MAX) -> np.ndarray:
    """Input rates in Hz (N, h*w) of images in [0, 1]."""
    images = np.asarray(images, np.float64)
    if images.size and (images.min() < 0 or images.max() > 1):
        raise DataError("images must be preprocessed to [0, 1] before encoding")
    return images.reshape(len(images), -1) * f_max


def poisson_encode(
    images: np.ndarray, duration: float = 350.0, dt: float = 0.5, f_max: float = F_MAX,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Dense Poisson spike trains (T, N, h*w) for images in [0, 1] (duration and dt in ms).

    The ensemble kernel draws the same process event by event; this dense form is for
    inspection and for other models.
    """
    x = torch.as_tensor(poisson_rates(images, f_max) / f_max)
    return PoissonEncoder(int(round(duration / dt)), f_max=f_max, dt=dt / 1000.0)(x, generator=generator)
