"""Small real data sets on disk, made from scikit-learn's digits: PNG trees, a JSON annotation
list, an npz file and a CIFAR-10 root in torchvision's pickle format."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def digits_u8(per_class: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` 8x8 uint8 digit images per class (from image `offset` of each class on)."""
    d = load_digits()
    idx = np.concatenate([np.flatnonzero(d.target == c)[offset:offset + per_class] for c in range(10)])
    return np.round(d.images[idx] * (255 / 16)).astype(np.uint8), d.target[idx].astype(np.int64)


def write_png_tree(root: Path, per_class: int, offset: int = 0) -> list[Path]:
    x, y = digits_u8(per_class, offset)
    paths = []
    for i, (img, label) in enumerate(zip(x, y)):
        p = root / f"digit_{label}" / f"{i:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img, mode="L").save(p)
        paths.append(p)
    return paths


def write_annotations(root: Path, per_class: int) -> Path:
    paths = write_png_tree(root / "images", per_class)
    entries = [{"image": str(p.relative_to(root)), "label": p.parent.name} for p in paths]
    (root / "labels.json").write_text(json.dumps(entries))
    return root / "labels.json"


def write_npz(path: Path, per_class: int) -> Path:
    x, y = digits_u8(per_class)
    np.savez(path, x=x, y=y)
    return path


def write_cifar10_root(root: Path, train_per_class: int = 60, test_per_class: int = 40) -> Path:
    """cifar-10-batches-py with 5 train batches, a test batch and batches.meta (32x32 RGB digits)."""
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)

    def rows(per_class: int, offset: int) -> tuple[np.ndarray, list[int]]:
        x, y = digits_u8(per_class, offset)
        big = x.repeat(4, axis=1).repeat(4, axis=2)  # 8x8 -> 32x32, nearest
        rgb = np.stack([big, 255 - big, big // 2], axis=1)  # (N, 3, 32, 32)
        return rgb.reshape(len(rgb), -1), y.tolist()

    data, labels = rows(train_per_class, 0)
    for b, chunk in enumerate(np.array_split(np.arange(len(labels)), 5), start=1):
        with open(base / f"data_batch_{b}", "wb") as f:
            pickle.dump({b"data": data[chunk], b"labels": [labels[i] for i in chunk]}, f)
    data, labels = rows(test_per_class, train_per_class)
    with open(base / "test_batch", "wb") as f:
        pickle.dump({b"data": data, b"labels": labels}, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in ("zero one two three four five six seven eight "
                                                            "nine").split()]}, f)
    return root


def write_image_classes(root: Path, counts: dict[str, int], size: int = 32, offset: int = 0) -> Path:
    """ROOT/NAME/*.png, counts[NAME] RGB images of size x size per class, in the order given: class i
    is digit i % 10 tinted with colour i // 10 (five tints, so up to 50 told-apart classes)."""
    tints = np.array([(1.0, 1.0, 1.0), (1.0, 0.3, 0.3), (0.3, 1.0, 0.3), (0.3, 0.3, 1.0), (1.0, 1.0, 0.2)])
    d = load_digits()
    for i, (name, n) in enumerate(counts.items()):
        idx = np.flatnonzero(d.target == i % 10)[offset:offset + n]
        if len(idx) < n:
            raise ValueError(f"digit {i % 10} has {len(idx)} images from {offset} on, not {n}")
        (root / name).mkdir(parents=True, exist_ok=True)
        for j, k in enumerate(idx):
            gray = np.round(d.images[k] * (255 / 16)).repeat(size // 8 + 1, 0).repeat(size // 8 + 1, 1)[:size, :size]
            rgb = (gray[..., None] * tints[i // 10 % len(tints)]).astype(np.uint8)
            Image.fromarray(rgb, mode="RGB").save(root / name / f"{j:04d}.png")
    return root
