"""CIFAR's pickles read by an unpickler that rebuilds dicts, lists and numpy arrays and nothing
else, and no array larger than the file could hold."""
from __future__ import annotations

import math
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from hpo.errors import UserError
from hpo.train.sources.base import cut


class _CifarUnpickler(pickle.Unpickler):
    """Reads CIFAR's pickles (dicts of bytes, lists and numpy arrays) and nothing else: a pickle
    can name any function to call while loading (os.system ...), so only the numpy names that
    rebuild an array are found; every other global is refused. An array is rebuilt from bytes
    the file holds, so one that asks for more memory than `max_bytes` (the file's size) is refused
    before numpy allocates it."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.numeric", "_frombuffer"),
               ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode")}

    def __init__(self, fh: Any, max_bytes: int) -> None:
        super().__init__(fh, encoding="bytes")
        self.max_bytes = max_bytes

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        if name == "encode":  # how Python 3 writes bytes at protocol 2: _codecs.encode(text, "latin1")
            return _latin1_encode
        if name == "ndarray":
            return self._ndarray
        if name == "dtype":
            return np.dtype
        core = getattr(np, "_core", None) or np.core  # numpy 2 moved numpy.core to numpy._core
        return self._reconstruct if name == "_reconstruct" else core.numeric._frombuffer

    def _fits(self, shape: Any, dtype: Any) -> None:
        dims = (shape,) if isinstance(shape, int) else tuple(shape)
        if not all(isinstance(d, int) for d in dims):
            raise pickle.UnpicklingError(f"array shape {cut(repr(shape))} is not a tuple of integers")
        size = math.prod(dims) * np.dtype(dtype).itemsize  # Python integers: no overflow
        if size > self.max_bytes:
            raise pickle.UnpicklingError(f"an array of shape {cut(repr(shape))} needs {size:,} bytes, more than "
                                         f"the whole file ({self.max_bytes:,} bytes) could hold")

    def _ndarray(self, shape: Any, dtype: Any = float, *args: Any) -> np.ndarray:
        self._fits(shape, dtype)
        return np.ndarray(shape, dtype, *args)

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype != self._ndarray:  # what find_class gave for numpy.ndarray
            raise pickle.UnpicklingError(f"refused array type {cut(repr(subtype))}")
        self._fits(shape, dtype)
        core = getattr(np, "_core", None) or np.core
        return core.multiarray._reconstruct(np.ndarray, shape, dtype)


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


def read_cifar_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            d = _CifarUnpickler(fh, max_bytes=os.fstat(fh.fileno()).st_size).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise UserError(f"data: {path} is not a CIFAR pickle hpo can read ({type(exc).__name__}: "
                        f"{cut(str(exc), 200)}); CIFAR files hold a dict of bytes, lists and numpy arrays, "
                        "nothing else") from None
    except MemoryError:  # a length field claiming more bytes than there are: the unpickler allocates it first
        raise UserError(f"data: {path} is not a CIFAR pickle hpo can read: it asks for more memory than this "
                        "machine has while being read; CIFAR files hold a dict of bytes, lists and numpy arrays "
                        "no larger than the file") from None
    if not isinstance(d, dict):
        raise UserError(f"data: {path} holds a {type(d).__name__}, not the dict a CIFAR file holds")
    return d
