"""The `cifar10` and `cifar100` sources: CIFAR in torchvision's on-disk format, checked against
torchvision's MD5 sums unless `verify: false`."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hpo.errors import UserError
from hpo.spec.options import Bool
from hpo.train.sources.base import ROOT, SOURCES, VERIFY, ImageSet, Parts, check_labels, need
from hpo.train.sources.unpickle import read_cifar_pickle


_CIFAR = {  # name -> (folder, train files, test files, label key, meta file, names key)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels",
                "batches.meta", b"label_names"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", "meta", b"fine_label_names"),
}


def _cifar(name: str, root: str, download: bool, verify: bool) -> Parts:
    folder, train_files, test_files, label_key, meta, names_key = _CIFAR[name]
    base = Path(root) / folder
    if not base.is_dir():
        if download:  # only when the study file says so; this machine may have no network
            import torchvision

            cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
            cls(root, train=True, download=True)
        else:
            raise UserError(f"data: {name} files not found: expected folder {base} (torchvision's layout). "
                            f"Extract {folder.replace('-batches-py', '').replace('-python', '')}-python.tar.gz "
                            f"into {root}, point data.params.root at the folder holding {folder}, "
                            "or set data.params.download: true")
    sums = _torchvision_md5(name) if verify else {}

    def read(f: str, what: str) -> Any:
        path = need(base / f, f"{name} {what}", "the extracted archive is incomplete")
        if verify:
            _check_md5(path, sums[f], name)
        return read_cifar_pickle(path)

    def load(files: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            d = read(f, "batch file")
            xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[label_key], dtype=np.int64))
        return np.concatenate(xs), np.concatenate(ys)

    names = tuple(n.decode() for n in read(meta, "meta file")[names_key])
    (xtr, ytr), (xte, yte) = load(train_files), load(test_files)
    return {"train": ImageSet(xtr, check_labels(ytr, len(names), str(base)), names),
            "test": ImageSet(xte, check_labels(yte, len(names), str(base)), names)}


def _torchvision_md5(name: str) -> dict[str, str]:
    """file name -> MD5, as torchvision publishes them (its CIFAR classes' train_list, test_list, meta)."""
    import torchvision

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    return {**dict(cls.train_list), **dict(cls.test_list), cls.meta["filename"]: cls.meta["md5"]}


def _check_md5(path: Path, expected: str, name: str) -> None:
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            md5.update(chunk)
    if md5.hexdigest() != expected:
        raise UserError(f"data: {path} does not match torchvision's checksum for {name} (md5 {md5.hexdigest()}, "
                        f"expected {expected}): the file is damaged or not torchvision's {name}. Re-download it "
                        "(data.params.download: true into an empty root), or, for your own re-packed files, set "
                        "data.params.verify: false (they are then read with a pickle reader that runs no code)")


@SOURCES.register("cifar10", root=ROOT, download=Bool(False), verify=VERIFY)
def cifar10(root: str, download: bool, verify: bool) -> Parts:
    return _cifar("cifar10", root, download, verify)


@SOURCES.register("cifar100", root=ROOT, download=Bool(False), verify=VERIFY)
def cifar100(root: str, download: bool, verify: bool) -> Parts:
    return _cifar("cifar100", root, download, verify)
