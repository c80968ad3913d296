"""Train the clean image tower: a small CNN that sees defects, with labels deciding what is alike.

The image tower is :class:`lookalike_clip.model.ConvTower` (conv stem, residual stages, GeM pooling, projection).
Each step draws B catalog items and feeds 2B images ``[originals; twins]``; the edited twin of an item differs in
exactly one attribute (a defect added, removed or moved, or the colour), so it is an image-side hard negative
whenever that attribute is the defect. The loss on the embedding ``z`` is

- supervised contrastive (SupCon, Khosla et al. 2020) on the L2-normalised embedding, positives = other images of
  the batch with the same part *and* defect, temperature ``--temperature``: this is what retrieval ranks by;
- plus linear heads on ``z`` (cross-entropy) for defect, part, defect position and colour, weighted
  ``--w-defect/--w-part/--w-position/--w-color``: they keep position and colour readable in the embedding (the text
  tower needs them for captions and for twins), at a weight below the contrastive term, so colour does not rule.

The heads are dropped at export. Augmentation: light random-resized crop and brightness/contrast jitter, no flips
(positions are labels). The text tower is trained afterwards against this locked tower (``train_text.py``, LiT).

    python3 train_image.py --data work/train --out work/clean.pt
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from lookalike_clip.data import Normalizer, label_tensors, load_catalog, load_images, photometric_jitter, random_resized_crop, to_unit
from lookalike_clip.losses import supcon_loss
from lookalike_clip.model import ConvConfig, ConvTower, read_blob, save_image_tower
from lookalike_clip.util import TimedSchedule, log, pick_device, setup_torch


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="catalog directory written by `lookalike synth --twins`")
    p.add_argument("--out", required=True, help="checkpoint path (.pt) holding the image tower")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--stem-width", type=int, default=16)
    p.add_argument("--widths", default="32,64,128,192")
    p.add_argument("--blocks", type=int, default=0, help="residual blocks per stage (0 = one stride-2 conv per stage)")
    p.add_argument("--act", default="silu")
    p.add_argument("--embed-dim", type=int, default=128)
    p.add_argument("--epochs", type=float, default=8.0, help="passes over the items (each item brings its twin)")
    p.add_argument("--batch", type=int, default=128, help="catalog items per step (2x images with twins)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--wd", type=float, default=0.05)
    p.add_argument("--warmup-frac", type=float, default=0.05)
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--w-defect", type=float, default=1.0)
    p.add_argument("--w-part", type=float, default=0.5)
    p.add_argument("--w-position", type=float, default=0.5)
    p.add_argument("--w-color", type=float, default=0.25)
    p.add_argument("--init", default="", help="start from this image-tower checkpoint (a warm restart: a second cosine cycle)")
    p.add_argument("--max-minutes", type=float, default=0, help="time budget; the schedule shrinks to fit; 0 = off")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


class Heads(nn.Module):
    """Linear label heads on the embedding (training only)."""

    def __init__(self, dim: int, sizes: dict[str, int]) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({k: nn.Linear(dim, n) for k, n in sizes.items()})

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: h(z) for k, h in self.heads.items()}


def main() -> None:
    args = parse_args()
    setup_torch(args.threads, args.seed)
    device = pick_device(args.device)
    t_start = time.time()

    cat = load_catalog(args.data)
    items = [it for it in cat.items if it.twin_file]
    if not items:
        raise SystemExit(f"{args.data}: no items with twins; generate the catalog with --twins")
    labels, sizes = label_tensors(cat, [it.labels for it in items] + [it.twin_labels for it in items])
    images = torch.cat(
        [load_images(args.data, [it.file for it in items], args.image_size), load_images(args.data, [it.twin_file for it in items], args.image_size)]
    )  # [2N, 3, S, S] uint8: originals, then twins
    n = len(items)
    log(f"{n} items with twins, {2 * n} images at {args.image_size} px, decoded in {time.time() - t_start:.0f}s")

    cfg = ConvConfig(
        image_size=args.image_size,
        stem_width=args.stem_width,
        widths=tuple(int(w) for w in args.widths.split(",")),
        blocks=args.blocks,
        output_dim=args.embed_dim,
        act=args.act,
    )
    tower = ConvTower(cfg)
    previous = None
    if args.init:
        blob = read_blob(args.init)
        saved = dict(blob["config"]["vision"])
        saved["widths"] = tuple(saved["widths"])
        cfg = ConvConfig(**saved)
        tower = ConvTower(cfg)
        tower.load_state_dict(blob["state_dict"], strict=True)
        previous = blob["recipe"]
        log(f"warm restart from {args.init} ({previous.get('steps')} steps)")
    tower = tower.to(device)
    heads = Heads(args.embed_dim, sizes).to(device)
    norm = Normalizer().to(device)
    params = list(tower.named_parameters()) + list(heads.named_parameters())
    decay = [p for name, p in params if p.ndim >= 2]
    no_decay = [p for name, p in params if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    steps_per_epoch = n // args.batch
    total = max(1, int(args.epochs * steps_per_epoch))
    warmup = int(args.warmup_frac * total)
    weights = {"defect": args.w_defect, "part": args.w_part, "position": args.w_position, "color": args.w_color}
    log(f"image tower {sum(p.numel() for p in tower.parameters()) / 1e6:.2f}M params; {total} steps of {2 * args.batch} images")

    gen = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(n, generator=gen)
    cursor, step, seen = 0, 0, 0
    schedule = TimedSchedule(total, warmup, args.max_minutes, t_start)
    t_loop = schedule.t_loop
    stopped_early = False
    history = []
    tower.train()
    while step < schedule.total:
        if cursor + args.batch > n:
            perm, cursor = torch.randperm(n, generator=gen), 0
        idx = perm[cursor : cursor + args.batch]
        cursor += args.batch
        rows = torch.cat([idx, idx + n])
        x = norm(photometric_jitter(random_resized_crop(to_unit(images[rows].to(device)))))
        y = {k: v[rows].to(device) for k, v in labels.items()}

        for group in opt.param_groups:
            group["lr"] = args.lr * schedule.lr_factor(step)
        z = tower(x)
        con = supcon_loss(F.normalize(z, dim=-1), y["part_defect"], args.temperature)
        logits = heads(z)
        ce = {k: F.cross_entropy(logits[k], y[k]) for k in weights}
        loss = con + sum(weights[k] * ce[k] for k in weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        seen += x.shape[0]
        schedule.fit(step)
        if step % 25 == 0 or step == schedule.total:
            with torch.no_grad():
                acc = {k: (logits[k].argmax(1) == y[k]).float().mean().item() for k in weights}
            entry = {"step": step, "loss": round(loss.item(), 4), "supcon": round(con.item(), 4), **{f"acc_{k}": round(v, 3) for k, v in acc.items()}}
            history.append(entry)
            log(f"step {step}/{schedule.total} {json.dumps(entry)} lr {opt.param_groups[0]['lr']:.2e} {seen / (time.time() - t_loop):.0f} img/s")
        if schedule.spent(step):
            stopped_early = True
            break

    wall = time.time() - t_start
    recipe = {
        "data": args.data,
        "dataSeed": cat.meta.get("seed"),
        "generator": cat.meta.get("generator"),
        "items": n,
        "imagesPerEpoch": 2 * n,
        "epochs": round(step / max(1, steps_per_epoch), 3),
        "steps": step,
        "batchItems": args.batch,
        "batchImages": 2 * args.batch,
        "lr": args.lr,
        "weightDecay": args.wd,
        "warmupSteps": schedule.warmup,
        "schedule": "warmup + cosine",
        "augmentation": "random resized crop (scale 0.88-1, aspect 1/1.06-1.06), brightness/contrast jitter ±10 %, no flips",
        "loss": f"SupCon (positives = same part+defect, τ = {args.temperature}) over [originals; twins] + label heads on the embedding",
        "headWeights": weights,
        "stoppedEarly": stopped_early,
        "wallSeconds": round(wall, 1),
        "device": str(device),
        "torch": torch.__version__,
        "history": history[-4:],
    }
    if previous is not None:
        recipe = {**recipe, "warmRestartOf": previous, "wallSeconds": round(wall + previous.get("wallSeconds", 0), 1)}
    save_image_tower(args.out, tower, {"recipe": recipe})
    with open(args.out + ".json", "w", encoding="utf-8") as f:
        json.dump({"config": {**cfg.__dict__, "widths": list(cfg.widths)}, "recipe": recipe}, f, indent=1)
    log(f"saved {args.out} after {step} steps in {wall / 60:.1f} min")


if __name__ == "__main__":
    main()
