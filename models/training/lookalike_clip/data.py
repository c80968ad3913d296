"""The synthetic catalog (see the on-disk contract): loading, caption variants, preprocessing, augmentation.

Images are decoded once with PIL, resized like inference does (shortest side to S, bicubic, centre crop) and kept
in memory as uint8 ``[N, 3, S, S]``, cached as ``.npy`` next to the data. Training never flips or rotates: defect
positions are labels.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from multiprocessing import Pool
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# OpenAI CLIP statistics, the ones every open_clip ViT checkpoint (and so this project's contract) uses.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

PARTS = ("bolt", "nut", "washer", "gear", "bracket", "circuit board", "bottle", "tile")
DEFECTS = ("none", "scratch", "crack", "dent", "stain", "hole", "missing piece", "corrosion")
POSITIONS = ("top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right")


@dataclass
class Item:
    id: str
    file: str
    caption: str
    labels: dict
    twin_file: Optional[str] = None
    twin_caption: Optional[str] = None
    twin_labels: Optional[dict] = None
    twin_edit: Optional[dict] = None


@dataclass
class Catalog:
    root: str
    meta: dict
    items: list[Item]

    @property
    def vocabulary(self) -> dict:
        return self.meta.get("vocabulary", {})


def load_catalog(root: str) -> Catalog:
    with open(os.path.join(root, "catalog.json"), encoding="utf-8") as f:
        meta = json.load(f)
    items = []
    with open(os.path.join(root, "manifest.jsonl"), encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            twin = r.get("twin")
            items.append(
                Item(
                    id=r["id"],
                    file=r["file"],
                    caption=r["caption"],
                    labels=r["labels"],
                    twin_file=twin and twin["file"],
                    twin_caption=twin and twin["caption"],
                    twin_labels=twin and twin["labels"],
                    twin_edit=twin and twin.get("edit"),
                )
            )
    return Catalog(root, meta, items)


# --- preprocessing -------------------------------------------------------------------------------------------------


def resize_center_crop(img: Image.Image, size: int) -> Image.Image:
    """open_clip's inference transform up to ``ToTensor``: torchvision ``Resize(size, BICUBIC)`` (shortest side to
    ``size``, the other truncated) then ``CenterCrop(size)`` (offsets rounded half-to-even), on an RGB image."""
    img = img.convert("RGB")
    w, h = img.size
    nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BICUBIC)
    left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def load_pixels(path: str, size: int) -> np.ndarray:
    """uint8 ``[3, S, S]``."""
    with Image.open(path) as img:
        return np.asarray(resize_center_crop(img, size), dtype=np.uint8).transpose(2, 0, 1).copy()


def _load_one(args: tuple[str, int]) -> np.ndarray:
    return load_pixels(*args)


def load_images(root: str, files: Sequence[str], size: int, workers: int = 2) -> torch.Tensor:
    """uint8 ``[N, 3, S, S]`` for ``files`` (relative to ``root``), cached in ``root/cache-<S>-<hash>.npy``."""
    key = hashlib.sha256(("\n".join(files) + f"|{size}").encode()).hexdigest()[:16]
    cache = os.path.join(root, f"cache-{size}-{key}.npy")
    if os.path.exists(cache):
        return torch.from_numpy(np.load(cache))
    jobs = [(os.path.join(root, f), size) for f in files]
    if workers > 1:
        with Pool(workers) as pool:
            arrays = pool.map(_load_one, jobs, chunksize=64)
    else:
        arrays = [_load_one(j) for j in jobs]
    out = np.stack(arrays)
    np.save(cache, out)
    return torch.from_numpy(out)


def to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 → float in [0, 1]."""
    return pixels.float().div_(255.0)


class Normalizer(torch.nn.Module):
    """Per-channel ``(x - mean) / std`` on ``[N, 3, H, W]`` in [0, 1]; differentiable, so attacks see through it."""

    def __init__(self, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def random_resized_crop(x: torch.Tensor, min_scale: float = 0.88, max_aspect: float = 1.06) -> torch.Tensor:
    """Batched light random-resized crop on ``[N, 3, S, S]`` in [0, 1]: each image zooms to a crop covering
    ``min_scale``–1 of its side (aspect within ``1/max_aspect``–``max_aspect``) at a random place, keeping every
    position label true."""
    n = x.shape[0]
    dev = x.device
    s = torch.empty(n, device=dev).uniform_(min_scale, 1.0)
    log_a = torch.empty(n, device=dev).uniform_(-np.log(max_aspect), np.log(max_aspect))
    sx = (s * torch.exp(log_a / 2)).clamp(max=1.0)
    sy = (s * torch.exp(-log_a / 2)).clamp(max=1.0)
    tx = (torch.rand(n, device=dev) * 2 - 1) * (1 - sx)
    ty = (torch.rand(n, device=dev) * 2 - 1) * (1 - sy)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, tx, sy, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


# --- captions ------------------------------------------------------------------------------------------------------


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def compose_caption(labels: dict, color: bool = True, material: bool = True, defect: bool = True, position: bool = True) -> str:
    """The contract's caption grammar with optional attributes left out (``part`` is always kept)."""
    head = [w for w, keep in ((labels["color"], color), (labels["material"], material)) if keep] + [labels["part"]]
    text = f"{_article(head[0])} {' '.join(head)}"
    if defect:
        d = labels["defect"]
        if d == "none":
            text += " with no defects"
        else:
            text += f" with {d}" if d == "corrosion" else f" with {_article(d)} {d}"
            if position and labels.get("position"):
                text += f" at the {labels['position']}"
    return text


def caption_variants(labels: dict, twin_labels: Optional[dict], rng: random.Random, p_full: float = 0.5) -> tuple[Optional[dict], Optional[dict]]:
    """Which attributes to keep for an (image, twin) caption pair, or ``(None, None)`` for the verbatim captions.

    Only attributes the twin shares may be dropped, so the pair's captions still differ in the edited attribute
    and the twin stays a true hard negative. Returns the same keep-mask for both.
    """
    if rng.random() < p_full:
        return None, None
    t = twin_labels or labels
    same = lambda k: labels.get(k) == t.get(k)  # noqa: E731
    defect_same = same("defect") and same("position")
    keep = {
        "color": not same("color") or rng.random() < 0.5,
        "material": rng.random() < 0.5,
        "defect": not defect_same or rng.random() < 0.75,
        "position": not defect_same or rng.random() < 0.6,
    }
    return keep, keep


def prompt_words() -> list[str]:
    """Every word the evaluation prompts use, so they are in the vocabulary whatever the training captions hold."""
    words = list(PARTS) + list(DEFECTS) + list(POSITIONS)
    return words + ["a", "an", "with", "no", "defects", "at", "the"]


def defect_prompts(defect: str) -> list[str]:
    """Zero-shot prompts for one defect class, ensembled over parts (captions name a part)."""
    return [compose_caption({"part": p, "color": "", "material": "", "defect": defect, "position": None}, color=False, material=False) for p in PARTS]


def part_prompts(part: str) -> list[str]:
    return [f"{_article(part)} {part}"]


def same_caption_mask(captions: Sequence[str]) -> torch.Tensor:
    """``[M, M]`` bool, True where two different rows carry the same caption (false negatives to leave out)."""
    ids = {}
    keys = torch.tensor([ids.setdefault(c, len(ids)) for c in captions])
    m = keys[:, None] == keys[None, :]
    m.fill_diagonal_(False)
    return m


# --- labels and photometric augmentation (the CNN towers) ---------------------------------------------------------


def label_tensors(cat: Catalog, rows: Sequence[dict]) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Integer labels of ``rows`` (label dicts) for training: ``part``, ``defect``, ``position`` (index 0 = no
    defect), ``color`` and their product ``part_defect``; and the class count of each head (``part_defect`` has none).
    Colours come from the catalog's vocabulary, so every split numbers them alike."""
    colors = list(cat.vocabulary.get("colors") or cat.vocabulary.get("color") or sorted({r["color"] for r in rows}))
    for r in rows:
        if r["color"] not in colors:
            colors.append(r["color"])
    out = {
        "part": torch.tensor([PARTS.index(r["part"]) for r in rows]),
        "defect": torch.tensor([DEFECTS.index(r["defect"]) for r in rows]),
        "position": torch.tensor([0 if not r.get("position") else 1 + POSITIONS.index(r["position"]) for r in rows]),
        "color": torch.tensor([colors.index(r["color"]) for r in rows]),
    }
    out["part_defect"] = out["part"] * len(DEFECTS) + out["defect"]
    return out, {"defect": len(DEFECTS), "part": len(PARTS), "position": 1 + len(POSITIONS), "color": len(colors)}


def photometric_jitter(x: torch.Tensor, strength: float = 0.1) -> torch.Tensor:
    """Per-image brightness and contrast jitter (±``strength``) on ``[N, 3, H, W]`` in [0, 1], clamped; hue is left
    alone (colour is a label)."""
    n = x.shape[0]
    b = 1 + (torch.rand(n, 1, 1, 1, device=x.device) * 2 - 1) * strength
    c = 1 + (torch.rand(n, 1, 1, 1, device=x.device) * 2 - 1) * strength
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * c + mean * b).clamp_(0, 1)
