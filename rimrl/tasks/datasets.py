"""Small data sets generated in code or shipped inside a package (nothing is downloaded).

- ``two-moons``: scikit-learn's ``make_moons`` (2-D, 2 classes);
- ``spirals``: two interleaved spirals (2-D, 2 classes), generated here;
- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes).

:func:`load_dataset` returns train/test tensors and, for semi-supervised runs, which training
examples keep their labels (``labels_per_class`` per class, drawn with the seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

DATASETS = ("two-moons", "spirals", "digits")


@dataclass
class Dataset:
    """Train/test tensors; ``labeled`` indexes the training examples whose labels are used."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    labeled: torch.Tensor
    num_classes: int
    image_shape: Optional[tuple[int, ...]] = None  # (C, H, W) for image data


def spirals(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals of ``n`` points in all, with Gaussian noise."""
    half = n // 2
    counts = (half, n - half)
    xs, ys = [], []
    for label, count in enumerate(counts):
        t = np.sqrt(rng.uniform(0, 1, count)) * 3 * np.pi
        sign = 1 if label == 0 else -1
        points = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], 1) / (3 * np.pi)
        xs.append(points + rng.normal(0, noise, points.shape))
        ys.append(np.full(count, label))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def load_dataset(name: str, seed: int, n_train: int = 1000, n_test: int = 1000,
                 noise: float = 0.1, labels_per_class: Optional[int] = None) -> Dataset:
    """Build data set ``name``; a ValueError says what is wrong with the arguments."""
    rng = np.random.default_rng(seed)
    image_shape = None
    if name == "two-moons":
        from sklearn.datasets import make_moons
        x, y = make_moons(n_train + n_test, noise=noise, random_state=seed)
        x = (x - x.mean(0)) / x.std(0)
        x_tr, y_tr, x_te, y_te = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    elif name == "spirals":
        x, y = spirals(n_train + n_test, noise, rng)
        order = rng.permutation(len(x))
        x, y = x[order], y[order]
        x_tr, y_tr, x_te, y_te = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    elif name == "digits":
        from sklearn.datasets import load_digits
        digits = load_digits()
        x, y = digits.data / 16.0, digits.target
        order = rng.permutation(len(x))
        cut = int(0.7 * len(x))
        x_tr, y_tr, x_te, y_te = x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]
        image_shape = (1, 8, 8)
    else:
        raise ValueError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}")
    num_classes = int(max(y_tr.max(), y_te.max()) + 1)
    labeled = np.arange(len(y_tr))
    if labels_per_class is not None:
        if labels_per_class < 1:
            raise ValueError(f"labels_per_class must be positive, got {labels_per_class}")
        picks = []
        for c in range(num_classes):
            members = np.flatnonzero(y_tr == c)
            if labels_per_class > len(members):
                raise ValueError(f"{labels_per_class} labels per class requested but class {c} "
                                 f"of {name} has only {len(members)} training examples")
            picks.append(rng.choice(members, labels_per_class, replace=False))
        labeled = np.sort(np.concatenate(picks))
    f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    g = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long)  # noqa: E731
    return Dataset(f(x_tr), g(y_tr), f(x_te), g(y_te), g(labeled), num_classes, image_shape)
