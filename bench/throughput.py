"""Training throughput: the write-ups' input pipeline against hpo's trial step, side by side.

(a) write-ups: a torchvision-style Dataset of PIL images, per-sample RandomCrop(32, padding=4) /
    RandomHorizontalFlip / ToTensor / Normalize, a DataLoader with 2 workers, float32.
(b) hpo: `hpo.train.loop.train_epoch` on the data as one uint8 tensor on the device, batches by
    index, crop / flip on the batch, the trial's own optimiser (`hpo.train.optim`: SGD, fused on
    CUDA); on CUDA also bf16 autocast, channels_last. One row per mode (`--modes`):
    eager, compile (`train.compile: true`), graph (`train.cuda_graph: true`, CUDA only) and
    compile+graph. Each graph row says whether the step was captured or why it ran eager.

Same model, same images (scikit-learn's digits scaled to the side asked, RGB, tiled to
--images), same batch size. Prints images/s for each and the ratio to (a); `--json FILE` also
writes them (bench/gpu_check.py reads it).

    python bench/throughput.py                     # CPU, defaults sized for 2 cores
    python bench/throughput.py --device cuda --model cifar_resnet32 --images 50000 --batch 128 \
        --modes eager,compile,graph,compile+graph
    python bench/throughput.py --device cuda --model timm --arch resnet50 --image-size 224 --images 2048 \
        --batch 64 --modes eager,compile --no-writeups
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from hpo.train import models, optim
from hpo.train.device_data import DeviceData, View, to_device
from hpo.train.graph_step import GraphStep, unsupported
from hpo.train.loop import train_epoch
from hpo.train.sources import ImageSet
from hpo.train.splits import Splits

MODES = ("eager", "compile", "graph", "compile+graph")
TRAIN = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "backbone_lr_mult": 1.0}


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


def hpo_step(mode: str, model_name: str, kw: dict, dev: DeviceData, view: View, batch: int,
             device: torch.device) -> tuple[Callable[[], int], Callable[[], str]]:
    """An epoch of hpo's trial step in `mode`, and a callable for the state of its graph."""
    torch.manual_seed(0)
    model = models.build(model_name, num_classes=10, in_chans=3, **kw).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = optim.build(model, models.head(model), TRAIN)  # the trial's optimiser: fused SGD on CUDA
    step_model = torch.compile(model) if "compile" in mode else model
    criterion = torch.nn.CrossEntropyLoss()
    graph = None
    if "graph" in mode:
        reason = unsupported(opt)
        if reason:
            raise SystemExit(f"{mode}: {reason}")
        graph = GraphStep(step_model, criterion, opt, dev, view, batch, capture=True)
    rng = np.random.default_rng(0)

    def epoch() -> int:
        train_epoch(step_model, criterion, opt, dev, rng.permutation(len(dev)), batch, view, graph, short_model=model)
        return len(dev)  # train_epoch returns a Python float: the device has finished

    def state() -> str:
        if graph is None:
            return "-"
        return f"eager: {graph.fallback}" if graph.fallback else f"captured {graph.captures}"

    return epoch, state


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--model", default="cifar_resnet8")
    ap.add_argument("--arch", default="resnet50", help="the timm architecture, with --model timm")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of pipeline (a)")
    ap.add_argument("--modes", default="eager", help=f"comma-separated, of {', '.join(MODES)}")
    ap.add_argument("--no-writeups", action="store_true", help="skip pipeline (a)")
    ap.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True")
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args()
    a.modes = [m for m in a.modes.split(",") if m]
    unknown = [m for m in a.modes if m not in MODES]
    if unknown:
        ap.error(f"--modes: {', '.join(unknown)} unknown; choose from {', '.join(MODES)}")
    if a.device == "cpu" and any("graph" in m for m in a.modes):
        ap.error("--modes: graph modes need --device cuda")
    return a


def main() -> None:
    a = arguments()
    device = torch.device(a.device)
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    x, y = images(a.images, a.image_size)
    kw = {"arch": a.arch} if a.model == "timm" else {}
    rows: dict[str, float] = {}
    states: dict[str, str] = {}
    if not a.no_writeups:
        torch.manual_seed(0)
        model_a = models.build(a.model, num_classes=10, in_chans=3, **kw).to(device)
        opt_a = torch.optim.SGD(model_a.parameters(), lr=0.05, momentum=0.9)
        loader = DataLoader(PILDataset(x, y), batch_size=a.batch, shuffle=True, num_workers=a.workers)
        rows["writeups"] = timed(lambda: writeups_epoch(model_a, opt_a, loader, device), a.epochs)
    part = ImageSet(x, y, tuple(str(i) for i in range(10)))
    dev = to_device(Splits(part, part, part), device)
    base = dev.view()
    for mode in a.modes:
        gen = torch.Generator(device=device).manual_seed(0)
        view = View(base.mean, base.std, aug={"crop_padding": a.image_size // 8, "flip": True}, gen=gen)
        epoch, state = hpo_step(mode, a.model, kw, dev.train, view, a.batch, device)
        rows[mode] = timed(epoch, a.epochs)
        states[mode] = state()
    report(a, rows, states)


def report(a: argparse.Namespace, rows: dict[str, float], states: dict[str, str]) -> None:
    print(f"model {a.model}{' ' + a.arch if a.model == 'timm' else ''}, {a.images} images {a.image_size}x"
          f"{a.image_size}x3, batch {a.batch}, device {a.device}, {torch.get_num_threads()} torch threads, "
          f"cudnn.benchmark {a.cudnn_benchmark}")
    print(f"{'pipeline':<44}{'images/s':>12}  graph")
    ref = rows.get("writeups")
    if ref is not None:
        print(f"{'(a) write-ups: PIL + DataLoader(' + str(a.workers) + ' workers), fp32':<44}{ref:>12.0f}  -")
    for mode in a.modes:
        ratio = f"  ({rows[mode] / ref:.2f}x (a))" if ref else ""
        print(f"{'(b) hpo trial step, ' + mode:<44}{rows[mode]:>12.0f}  {states[mode]}{ratio}")
    if a.json:
        a.json.write_text(json.dumps({"model": a.model, "arch": a.arch if a.model == "timm" else None,
                                      "batch": a.batch, "image_size": a.image_size, "device": a.device,
                                      "images_per_s": rows, "graph": states}, indent=1))


if __name__ == "__main__":
    main()
