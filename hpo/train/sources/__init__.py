"""Data sources, registered by name. Each returns its labelled images as uint8 (N, C, H, W)
arrays, either as one pool ("all") or already split ("train", "test", optionally "val").

One module per source (digits, cifar, imagefolder, annotations, npz), on the shared parts:
`base` (the registry, ImageSet, the shared options and checks), `decode` (image files decoded
on threads), `unpickle` (CIFAR's pickles, restricted). Every check of the user's files happens in
them, so `hpo launch` can run it once before any trial starts: a missing root, an empty class
folder, labels outside 0..K-1 are errors naming the path and the fix; unreadable images are
skipped with one warning (count and first paths).
"""
from hpo.train.sources import annotations, cifar, digits, imagefolder, npz  # noqa: F401 - each registers its source
from hpo.train.sources.base import IMAGE_EXTENSIONS, SOURCES, ImageSet, Parts, check_labels, load
from hpo.train.sources.decode import LARGE_PIXELS, MAX_PIXELS, decode_threads, read_images
from hpo.train.sources.imagefolder import hidden, image_files
from hpo.train.sources.unpickle import read_cifar_pickle

__all__ = ["IMAGE_EXTENSIONS", "LARGE_PIXELS", "MAX_PIXELS", "SOURCES", "ImageSet", "Parts", "check_labels",
           "decode_threads", "hidden", "image_files", "load", "read_cifar_pickle", "read_images"]
