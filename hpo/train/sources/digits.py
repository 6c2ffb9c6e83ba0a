"""The `digits` source: scikit-learn's handwritten digits."""
from __future__ import annotations

import numpy as np

from hpo.train.sources.base import SOURCES, ImageSet, Parts


@SOURCES.register("digits")
def digits() -> Parts:
    """scikit-learn's 1797 8x8 handwritten digits: shipped inside the package, so always there."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # pixel values are 0..16
    return {"all": ImageSet(x, d.target.astype(np.int64), tuple(str(n) for n in d.target_names))}
