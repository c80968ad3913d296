"""Parity fixtures for the TypeScript encoder: a few held-out images and captions with PyTorch's embeddings.

Writes ``models/fixtures/images/*.png`` (each catalog image at its native size and a copy already at the tower's
input size, which sidesteps resampler differences) and ``models/fixtures/parity.json`` with, per image, the
embeddings of both image towers computed as the reference pipeline does: PIL decode → RGB → shortest side to S
(bicubic) → centre crop → torchvision ``ToTensor`` + ``Normalize(mean, std)`` → tower → L2 normalise. Per caption:
token ids and the text tower's embedding.

    python3 fixtures.py --data work/test --models-dir .. --clean work/clean.pt --robust work/fare4.pt --out ../fixtures
"""

from __future__ import annotations

import argparse
import json
import os
import shutil

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

from lookalike_clip.data import CLIP_MEAN, CLIP_STD, DEFECTS, load_catalog, resize_center_crop
from lookalike_clip.model import load_checkpoint
from lookalike_clip.tokenizer import WordTokenizer
from lookalike_clip.util import log

EXTRA_TEXTS = ["A bracket with a CRACK, top-left!", "a zebra-striped widget", ""]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--models-dir", required=True)
    p.add_argument("--clean", required=True)
    p.add_argument("--robust", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, default=6)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    clean, _ = load_checkpoint(args.clean)
    robust, _ = load_checkpoint(args.robust)
    clean.eval()
    robust.eval()
    manifests = {}
    for name in ("defect-cnn-clean", "defect-cnn-fare4", "defect-cnn-text"):
        with open(os.path.join(args.models_dir, name, "manifest.json"), encoding="utf-8") as f:
            manifests[name] = json.load(f)
    tok = WordTokenizer.load(os.path.join(args.models_dir, "defect-cnn-text", "tokenizer.json"))
    size = clean.visual.image_size
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize(CLIP_MEAN, CLIP_STD)])

    cat = load_catalog(args.data)
    chosen, seen = [], set()
    for it in cat.items:  # one image per defect class, in catalog order
        if it.labels["defect"] not in seen:
            seen.add(it.labels["defect"])
            chosen.append(it)
        if len(chosen) == args.count:
            break
    chosen.sort(key=lambda it: DEFECTS.index(it.labels["defect"]))

    img_dir = os.path.join(args.out, "images")
    shutil.rmtree(img_dir, ignore_errors=True)
    os.makedirs(img_dir)
    towers = {"defect-cnn-clean": clean.visual, "defect-cnn-fare4": robust.visual}
    images = []
    for it in chosen:
        native = os.path.join(img_dir, f"{it.id}.png")
        shutil.copyfile(os.path.join(args.data, it.file), native)
        with Image.open(native) as im:
            resized = resize_center_crop(im, size)
        small = os.path.join(img_dir, f"{it.id}.{size}px.png")
        resized.save(small, optimize=True)
        for path in (native, small):
            with Image.open(path) as im:
                x = to_tensor(resize_center_crop(im, size)).unsqueeze(0)  # [1, 3, S, S] normalised
                w, h = im.size
            with torch.no_grad():
                emb = {k: F.normalize(t(x), dim=-1)[0].tolist() for k, t in towers.items()}
            images.append(
                {
                    "file": f"images/{os.path.basename(path)}",
                    "width": w,
                    "height": h,
                    "caption": it.caption,
                    "labels": it.labels,
                    "embeddings": emb,
                }
            )
    texts = []
    for text in [it.caption for it in chosen] + EXTRA_TEXTS:
        ids = tok.encode(text)
        with torch.no_grad():
            emb = F.normalize(clean.text(torch.tensor([ids])), dim=-1)[0].tolist()
        texts.append({"text": text, "ids": ids, "embedding": emb})

    doc = {
        "description": "PyTorch reference embeddings for the TypeScript encoder parity tests (cosine >= 0.9999).",
        "preprocessing": "PIL RGB -> shortest side to size (PIL BICUBIC) -> centre crop -> ToTensor -> Normalize(mean, std)",
        "models": {
            k: {"manifest": f"../{k}/manifest.json", "sha256": m["files"]["model"]["sha256"]} for k, m in manifests.items()
        },
        "input": {"size": size, "mean": list(CLIP_MEAN), "std": list(CLIP_STD)},
        "textModel": "defect-cnn-text",
        "images": images,
        "texts": texts,
    }
    with open(os.path.join(args.out, "parity.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    log(f"wrote {len(images)} image and {len(texts)} text fixtures to {args.out}")


if __name__ == "__main__":
    main()
