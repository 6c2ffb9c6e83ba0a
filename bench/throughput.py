"""Training throughput: the write-ups' input pipeline against hpo's loop, side by side.

(a) write-ups: a torchvision-style Dataset of PIL images, per-sample RandomCrop(32, padding=4) /
    RandomHorizontalFlip / ToTensor / Normalize, a DataLoader with 2 workers, float32.
(b) hpo: `hpo.train.loop.train_epoch` on the data as one uint8 tensor on the device, batches by
    index, crop / flip on the batch; on CUDA also bf16 autocast, channels_last.
(c) on CUDA only: (b) with `train.cuda_graph` (hpo/train/graph_step.py): full batches replay one
    captured step. Not yet run on a GPU (no GPU was lent to the session that added it).

Same model, same images (scikit-learn's digits scaled to 32x32 RGB, tiled to --images), same
batch size and optimiser. Prints images/s for each and the ratio (b) / (a).

    python bench/throughput.py                     # CPU, defaults sized for 2 cores
    python bench/throughput.py --device cuda --model cifar_resnet32 --images 50000 --batch 128
    python bench/throughput.py --model timm --arch resnet50 --image-size 224 --images 64 --batch 16
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from hpo.train import models
from hpo.train.splits import Splits
from hpo.train.device_data import View, to_device
from hpo.train.loop import compiled, train_epoch
from hpo.train.sources import ImageSet


def images(n: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    reps = -(-n // len(d.images))
    x = np.tile(np.round(d.images * (255 / 16)), (reps, 1, 1))[:n]
    x = F.interpolate(torch.tensor(x, dtype=torch.float32)[:, None], size=(size, size), mode="bilinear")[:, 0]
    x = x.round().clamp(0, 255).to(torch.uint8).numpy()
    x = np.stack([x, 255 - x, x // 2], axis=1)  # (N, 3, size, size), three distinct channels
    return x, np.tile(d.target, reps)[:n].astype(np.int64)


class PILDataset(Dataset):
    """How the write-ups fed their models: PIL images and per-sample transforms."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.images = [Image.fromarray(im.transpose(1, 2, 0)) for im in x]
        self.y = y
        mean, std = (x / 255.0).mean(axis=(0, 2, 3)).tolist(), (x / 255.0).std(axis=(0, 2, 3)).tolist()
        side = x.shape[-1]
        self.tf = transforms.Compose([transforms.RandomCrop(side, padding=side // 8), transforms.RandomHorizontalFlip(),
                                      transforms.ToTensor(), transforms.Normalize(mean, std)])

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.tf(self.images[i]), int(self.y[i])


def writeups_epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, loader: DataLoader, device: torch.device) -> int:
    model.train()
    n = 0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += len(yb)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n


def timed(fn, epochs: int) -> float:
    """Images per second over `epochs` epochs after one warm-up epoch (workers, compile, caches)."""
    fn()
    t0 = time.perf_counter()
    n = sum(fn() for _ in range(epochs))
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--model", default="cifar_resnet8")
    ap.add_argument("--arch", default="resnet50", help="the timm architecture, with --model timm")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of pipeline (a)")
    a = ap.parse_args()
    device = torch.device(a.device)
    x, y = images(a.images, a.image_size)
    kw = {"arch": a.arch} if a.model == "timm" else {}

    torch.manual_seed(0)
    model_a = models.build(a.model, num_classes=10, in_chans=3, **kw).to(device)
    opt_a = torch.optim.SGD(model_a.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(PILDataset(x, y), batch_size=a.batch, shuffle=True, num_workers=a.workers)
    ips_a = timed(lambda: writeups_epoch(model_a, opt_a, loader, device), a.epochs)

    torch.manual_seed(0)
    model_b = models.build(a.model, num_classes=10, in_chans=3, **kw).to(device)
    if device.type == "cuda":
        model_b = model_b.to(memory_format=torch.channels_last)
    step_model = compiled(model_b, "auto", device)
    opt_b = torch.optim.SGD(model_b.parameters(), lr=0.05, momentum=0.9)
    part = ImageSet(x, y, tuple(str(i) for i in range(10)))
    dev = to_device(Splits(part, part, part), device)
    rng, gen = np.random.default_rng(0), torch.Generator(device=device).manual_seed(0)
    base = dev.view()
    view = View(base.mean, base.std, aug={"crop_padding": a.image_size // 8, "flip": True}, gen=gen)
    criterion = torch.nn.CrossEntropyLoss()

    def ours() -> int:
        train_epoch(step_model, criterion, opt_b, dev.train, rng.permutation(len(y)), a.batch, view)
        return len(y)  # train_epoch returns a Python float: the device has finished

    ips_b = timed(ours, a.epochs)
    ips_c = None
    if device.type == "cuda":  # (c): the same loop with full batches replaying one captured step
        from hpo.train.graph_step import GraphStep

        graph = GraphStep(step_model, criterion, opt_b, dev.train, view, a.batch, capture=True)

        def graphed() -> int:
            train_epoch(step_model, criterion, opt_b, dev.train, rng.permutation(len(y)), a.batch, view, graph)
            return len(y)

        ips_c = timed(graphed, a.epochs)
    print(f"model {a.model}{' ' + a.arch if kw else ''}, {a.images} images {a.image_size}x{a.image_size}x3, batch {a.batch}, device {a.device}, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'pipeline':<44}{'images/s':>12}")
    print(f"{'(a) write-ups: PIL + DataLoader(' + str(a.workers) + ' workers), fp32':<44}{ips_a:>12.0f}")
    print(f"{'(b) hpo: uint8 on device, batch augment':<44}{ips_b:>12.0f}")
    print(f"ratio (b) / (a): {ips_b / ips_a:.2f}")
    if ips_c is not None:
        state = f"eager: {graph.fallback}" if graph.fallback else f"captured {graph.captures}"
        print(f"{'(c) hpo + train.cuda_graph (' + state[:30] + ')':<44}{ips_c:>12.0f}")
        print(f"ratio (c) / (a): {ips_c / ips_a:.2f}   (c) / (b): {ips_c / ips_b:.2f}")


if __name__ == "__main__":
    main()
