"""What an image folder holds, read from the files' headers: classes and counts per split, image
sizes and channels, and the files that cannot be read. What `hpo init` fits a study file to."""
from __future__ import annotations

import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hpo.train.sources import decode_threads, image_files

GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


@dataclass(frozen=True)
class FolderSurvey:
    root: str
    layout: str  # "classes" (ROOT/CLASS) or "splits" (ROOT/{train,val,test}/CLASS)
    counts: dict[str, dict[str, int]]  # split -> class -> readable images
    sides: tuple[int, ...]  # min(width, height) of every readable image
    grey: bool  # every readable image is single-channel
    unreadable: tuple[str, ...]

    @property
    def classes(self) -> list[str]:
        return sorted({c for per in self.counts.values() for c in per})

    @property
    def totals(self) -> dict[str, int]:
        """Images per class over every split."""
        return {c: sum(per.get(c, 0) for per in self.counts.values()) for c in self.classes}

    @property
    def smallest(self) -> tuple[str, int]:
        name = min(self.totals, key=lambda c: (self.totals[c], c))
        return name, self.totals[name]

    @property
    def median_side(self) -> int:
        return int(statistics.median(self.sides))

    @property
    def n_images(self) -> int:
        return sum(self.totals.values())


def _header(path: Path) -> tuple[int, str] | None:
    """(shorter side, mode) from the file's header, checked whole (PNG chunks' CRCs); None when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            side, mode = min(im.size), im.mode
            im.verify()
        return side, mode
    except Exception:  # noqa: BLE001 - PIL raises many kinds on a bad file
        return None


def survey(root: str) -> FolderSurvey:
    found = image_files(root)  # the layout imagefolder reads, with its errors for a wrong one
    paths = [(part, cls, p) for part, classes in found.items() for cls, files in classes.items() for p in files]
    with ThreadPoolExecutor(decode_threads(), thread_name_prefix="hpo-survey") as pool:
        heads = list(pool.map(_header, [p for _, _, p in paths]))
    counts: dict[str, dict[str, int]] = {part: {c: 0 for c in classes} for part, classes in found.items()}
    for (part, cls, _), head in zip(paths, heads):
        counts[part][cls] += head is not None
    ok = [h for h in heads if h is not None]
    return FolderSurvey(str(Path(root).resolve()), "classes" if "all" in found else "splits", counts,
                        tuple(s for s, _ in ok), bool(ok) and all(m in GREY_MODES for _, m in ok),
                        tuple(str(p) for (_, _, p), h in zip(paths, heads) if h is None))
