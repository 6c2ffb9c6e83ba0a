"""The `annotations` source: a JSON list of image paths and labels (indices or class names)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hpo.errors import UserError
from hpo.spec.options import Option
from hpo.train.sources.base import CHANNELS, FILE, IMAGE_SIZE, SOURCES, ImageSet, Parts, check_labels, cut, need
from hpo.train.sources.decode import read_images


def _image_paths(path: Path, entries: list[dict]) -> list[Path]:
    """Each entry's image, resolved (symlinks too); it must lie under the annotation file's
    folder, so a shared or downloaded annotation file cannot make hpo read /etc/passwd."""
    base = path.parent.resolve()
    out = []
    for i, e in enumerate(entries):
        image = e["image"]
        if not isinstance(image, str) or not image:
            raise UserError(f"data: {path} entry {i}: image {cut(repr(image))} must be a path relative to {base}")
        resolved = (base / image).resolve()
        if Path(image).is_absolute() or not resolved.is_relative_to(base):
            raise UserError(f"data: {path} entry {i}: image {cut(repr(image))} resolves to {cut(str(resolved))}, outside {base}; "
                            "image paths must be relative and stay under the annotation file's folder "
                            "(symlinks included): move the images there or the file next to them")
        out.append(resolved)
    return out


def _annotation_labels(path: Path, entries: list[dict], classes: list[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each entry's label as a class index, and the class names. A label is an integer index or a
    class name; anything else (1.5, true, null, [1]) is refused: int() would quietly turn 1.5 into
    class 1 and true into class 1."""
    for i, e in enumerate(entries):
        lab = e["label"]
        if isinstance(lab, bool) or not isinstance(lab, (int, str)):
            raise UserError(f"data: {path} entry {i}: label {cut(repr(lab))} is not a class index or a class name; "
                            "write each label as an integer 0..K-1 (e.g. 1) or as a class name string (e.g. \"cat\")")
    str_labels = sorted({e["label"] for e in entries if isinstance(e["label"], str)})
    # without class names, every class has an entry, so an index is below the number of entries
    k = len(classes) if classes else len(str_labels) if str_labels else len(entries)
    bad = [(i, e["label"]) for i, e in enumerate(entries) if isinstance(e["label"], int) and not 0 <= e["label"] < k]
    if bad:
        first = ", ".join(cut(str(lab), 20) for _, lab in bad[:5])
        raise UserError(f"data: {path}: {len(bad)} labels outside 0..{k - 1} (first: [{first}]) from entry {bad[0][0]} on; "
                        "fix the labels or list every class name in data.params.classes")
    names = tuple(classes) if classes else tuple(str_labels) if str_labels else tuple(
        str(k) for k in range(max(e["label"] for e in entries) + 1))
    index = {n: k for k, n in enumerate(names)}
    labels = []
    for i, e in enumerate(entries):
        lab = e["label"]
        if isinstance(lab, str) and lab not in index:
            raise UserError(f"data: {path} entry {i}: label {cut(repr(lab))} is not a known class "
                            f"({cut(', '.join(names))})")
        labels.append(index[lab] if isinstance(lab, str) else lab)
    return check_labels(np.asarray(labels, dtype=np.int64), len(names), str(path)), names


@SOURCES.register("annotations", file=FILE, image_size=IMAGE_SIZE, channels=CHANNELS,
                  classes=Option("list", None, doc="class names, in label order"))
def annotations(file: str, image_size: int, channels: int, classes: list[str] | None) -> Parts:
    """A JSON list of {"image": path relative to the file, "label": index or class name}; an entry
    may carry "split": train | val | test, otherwise hpo splits the pool."""
    path = need(Path(file), "annotation file", "point data.params.file at a JSON list of {image, label}")
    try:
        entries = json.loads(path.read_text())
    except ValueError as exc:  # JSONDecodeError, or an integer of more digits than Python converts
        raise UserError(f"data: {path} is not valid JSON: {cut(str(exc), 200)}") from None
    if not isinstance(entries, list) or not entries:
        raise UserError(f"data: {path} must hold a non-empty JSON list of {{\"image\": ..., \"label\": ...}}")
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or "image" not in e or "label" not in e:
            raise UserError(f"data: {path} entry {i} = {cut(repr(e))}: needs keys 'image' and 'label'")
    y_all, names = _annotation_labels(path, entries, classes)
    split_of = [e.get("split", "all") for e in entries]
    images = _image_paths(path, entries)
    # checked before any image is read; `in` on a tuple also takes a value that cannot be hashed
    if any(s not in ("all", "train", "val", "test") for s in split_of) or ("all" in split_of and len(set(split_of)) > 1):
        raise UserError(f"data: {path}: 'split' must be train, val or test on every entry, or on none")
    parts: Parts = {}
    for part in sorted(set(split_of)):
        idx = [i for i, s in enumerate(split_of) if s == part]
        files = [images[i] for i in idx]
        x, ok = read_images(files, image_size, channels)
        parts[part] = ImageSet(x, y_all[idx][ok], names)
    return parts
