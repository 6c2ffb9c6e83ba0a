"""The `imagefolder` source: one folder per class of image files (hidden files and folders left out)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hpo.errors import UserError
from hpo.train.sources.base import CHANNELS, IMAGE_EXTENSIONS, IMAGE_SIZE, ROOT, SOURCES, ImageSet, Parts, need
from hpo.train.sources.decode import read_images


def hidden(name: str) -> bool:
    """A name starting with '.': a tool's own folder or file (.ipynb_checkpoints, .DS_Store, .git),
    never a class or an image of the data set."""
    return name.startswith(".")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                  and not any(hidden(part) for part in p.relative_to(folder).parts))


def _class_folders(root: Path) -> dict[str, list[Path]]:
    classes = {d.name: _images_in(d) for d in sorted(root.iterdir()) if d.is_dir() and not hidden(d.name)}
    if not classes:
        raise UserError(f"data: {root} holds no class folders; expected ROOT/CLASS_NAME/*.png (or train/ val/ test/ "
                        "folders, each with one folder per class)")
    for name, files in classes.items():
        if not files:
            raise UserError(f"data: class folder {root / name} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                            "add images or remove the folder")
    return classes


def image_files(root: str) -> dict[str, dict[str, list[Path]]]:
    """The image files of ROOT/CLASS/*.png ({"all": {class: files}}) or ROOT/{train,val,test}/CLASS/*.png
    (one entry per split folder); every split folder has every class."""
    base = need(Path(root), "image folder", "point data.params.root at a folder of class folders")
    split_dirs = [s for s in ("train", "val", "test") if (base / s).is_dir()]
    layout = {s: base / s for s in split_dirs} if "train" in split_dirs else {"all": base}
    if "train" in layout and "test" not in layout:
        raise UserError(f"data: {base} has train/ but no test/; add test/ or put the class folders directly in {base}")
    found = {part: _class_folders(folder) for part, folder in layout.items()}
    names = sorted({c for classes in found.values() for c in classes})
    for part, classes in found.items():
        missing = [c for c in names if c not in classes]
        if missing:
            raise UserError(f"data: {layout[part]} lacks class folders {missing} that other splits have")
    return found


@SOURCES.register("imagefolder", root=ROOT, image_size=IMAGE_SIZE, channels=CHANNELS)
def imagefolder(root: str, image_size: int, channels: int) -> Parts:
    """ROOT/CLASS/*.png (split by hpo), or ROOT/{train,val,test}/CLASS/*.png (val optional)."""
    found = image_files(root)
    names = tuple(sorted({c for classes in found.values() for c in classes}))
    parts: Parts = {}
    for part, classes in found.items():
        paths = [p for c in names for p in classes[c]]
        labels = np.asarray([k for k, c in enumerate(names) for _ in classes[c]], dtype=np.int64)
        x, ok = read_images(paths, image_size, channels)
        parts[part] = ImageSet(x, labels[ok], names)
    return parts
