"""Train the text tower against locked image towers (LiT, Zhai et al. 2022), and write the CLIP checkpoints.

The image towers are frozen: the clean one (``--image``) and, with ``--robust``, the FARE one, each a checkpoint of
``train_image.py`` / ``train_fare.py`` or an exported model folder. Their embeddings of every training image
(originals and twins) are computed once, and the loss is their weighted sum (``--robust-weight`` for the robust
tower's share): one text tower serves both image towers, and the product searches the robust one by default, where a
text tower fitted to the clean tower alone classified defects zero-shot 25 points worse than against the clean one.

Each step draws B items and one caption per image of ``[originals; twins]``: half the verbatim captions, half the
same grammar with attributes left out (``caption_variants``: never the one the twin edits), so short queries such as
"a gear with a crack" are trained. The loss is a symmetric InfoNCE whose targets are
label-aware (UniCL-style): a caption's positives are every image of the batch that fits everything the caption says
(same part, and defect / position / colour / material where the caption names them), spread uniformly, so
identical or compatible captions are positives, never negatives; an image's positives are the captions that fit
it. Twins differ from their originals in exactly the edited attribute, so they stay hard negatives.

Writes CLIP checkpoints (``visual`` = a locked tower, ``text``, ``logit_scale``) that ``export.py``, ``evaluate.py``
and ``fixtures.py`` read: ``--out`` with the clean tower, ``--robust-out`` with the robust one.

    python3 train_text.py --data work/train --image work/image.pt --robust work/fare4-image.pt --robust-weight 1 \
        --out work/clean.pt --robust-out work/fare4.pt --tokenizer-out work/tokenizer.json
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch
import torch.nn.functional as F

from lookalike_clip.data import Normalizer, caption_variants, compose_caption, load_catalog, load_images, prompt_words, to_unit
from lookalike_clip.from_onnx import load_image_tower
from lookalike_clip.model import CLIP, TextConfig, save_checkpoint
from lookalike_clip.tokenizer import EOT_ID, WordTokenizer
from lookalike_clip.util import TimedSchedule, log, pick_device, setup_torch

ATTRS = ("color", "material", "defect", "position")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--image", required=True, help="clean image tower: train_image.py's checkpoint or an exported model folder")
    p.add_argument("--robust", help="robust image tower (train_fare.py's checkpoint or an exported model folder) to train against as well")
    p.add_argument("--robust-weight", type=float, default=1.0, help="share of the loss against the robust tower (with --robust); the clean tower has the rest")
    p.add_argument("--tuning-seed", type=int, help="recorded: the catalog seed --robust-weight was chosen on (held-out checks refuse it)")
    p.add_argument("--tuning-note", default="", help="recorded with --tuning-seed: what was compared there")
    p.add_argument("--out", required=True, help="CLIP checkpoint to write (the clean tower + the text tower)")
    p.add_argument("--robust-out", help="CLIP checkpoint to write with the robust tower + the same text tower (with --robust)")
    p.add_argument("--tokenizer-out", required=True)
    p.add_argument("--text-width", type=int, default=128)
    p.add_argument("--text-layers", type=int, default=3)
    p.add_argument("--context-length", type=int, default=32)
    p.add_argument("--epochs", type=float, default=12.0)
    p.add_argument("--batch", type=int, default=256, help="items per step (2x captions with twins)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--wd", type=float, default=0.05)
    p.add_argument("--warmup-frac", type=float, default=0.05)
    p.add_argument("--max-minutes", type=float, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def mentioned(labels: dict, keep: dict | None) -> dict:
    """The attributes a caption states: everything for a verbatim caption, else those ``keep`` kept (position only
    with a defect)."""
    keep = keep or {a: True for a in ATTRS}
    out = {"part": labels["part"]}
    for a in ("color", "material", "defect"):
        if keep.get(a):
            out[a] = labels[a]
    if keep.get("defect") and keep.get("position") and labels["defect"] != "none":
        out["position"] = labels.get("position")
    return out


KEYS = ("part",) + ATTRS


class Codes:
    """Attribute values as integers, so a batch's caption-fits-image matrix is one tensor comparison."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, object], int] = {}

    def row(self, values: dict, unstated: int = -1) -> list[int]:
        return [self.ids.setdefault((k, values[k]), len(self.ids)) if k in values else unstated for k in KEYS]


def fit_matrix(stated: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``[M, K]`` stated codes (-1 = not stated) × ``[M, K]`` image codes → ``[M, M]`` float, 1 where every stated
    attribute of caption i equals image j's."""
    s, l = stated[:, None, :], labels[None, :, :]
    return ((s == -1) | (s == l)).all(dim=2).float()


def label_aware_infonce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of ``[M captions, M images]`` logits whose positives are ``target``'s ones, spread evenly."""
    t2i = -(target / target.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    tt = target.t()
    i2t = -(tt / tt.sum(1, keepdim=True) * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
    return 0.5 * (t2i + i2t)


def main() -> None:
    args = parse_args()
    setup_torch(args.threads, args.seed)
    device = pick_device(args.device)
    rng = random.Random(args.seed)
    t_start = time.time()

    clean_tower, clean_recipe, _ = load_image_tower(args.image)
    vision = clean_tower.cfg
    towers = [(clean_tower, 1.0 - args.robust_weight if args.robust else 1.0)]
    if args.robust:
        robust_tower, robust_recipe, _ = load_image_tower(args.robust)
        if robust_tower.cfg != vision:
            raise SystemExit(f"{args.robust}: architecture differs from {args.image}'s")
        towers.append((robust_tower, args.robust_weight))

    cat = load_catalog(args.data)
    items = [it for it in cat.items if it.twin_file]
    n = len(items)
    vocab_words = [w for values in cat.vocabulary.values() for w in values] + prompt_words()
    texts = [it.caption for it in items] + [it.twin_caption for it in items]
    tokenizer = WordTokenizer.build(texts, args.context_length, extra_words=vocab_words)
    tokenizer.save(args.tokenizer_out, args.tokenizer_out.replace("tokenizer.json", "tokenizer_config.json"))
    text = TextConfig(
        vocab_size=tokenizer.vocab_size,
        context_length=args.context_length,
        width=args.text_width,
        layers=args.text_layers,
        heads=4,
        output_dim=vision.output_dim,
        eot_id=EOT_ID,
    )
    model = CLIP(vision, text)
    model.visual.load_state_dict(clean_tower.state_dict(), strict=True)
    model.to(device)
    model.visual.eval().requires_grad_(False)

    norm = Normalizer().to(device)
    images = torch.cat([load_images(args.data, [it.file for it in items], vision.image_size), load_images(args.data, [it.twin_file for it in items], vision.image_size)])
    locked = []  # [(embeddings [2N, D] of every image by a locked tower, weight)], the heaviest first (logged)
    with torch.no_grad():
        for tower, weight in sorted(towers, key=lambda t: -t[1]):
            if weight <= 0:
                continue
            tower.to(device).eval()
            emb = torch.cat([F.normalize(tower(norm(to_unit(images[i : i + 256].to(device)))), dim=-1) for i in range(0, len(images), 256)])
            locked.append((emb, weight))
    codes = Codes()
    all_codes = torch.tensor([codes.row(lab, unstated=-2) for lab in [it.labels for it in items] + [it.twin_labels for it in items]])
    log(f"{n} items; embedded {len(images)} images with the locked tower in {time.time() - t_start:.0f}s; vocabulary {tokenizer.vocab_size}")

    params = list(model.text.named_parameters())
    decay = [p for name, p in params if p.ndim >= 2 and "embedding" not in name]
    no_decay = [p for name, p in params if not (p.ndim >= 2 and "embedding" not in name)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.wd}, {"params": no_decay + [model.logit_scale], "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    steps_per_epoch = n // args.batch
    total = max(1, int(args.epochs * steps_per_epoch))
    warmup = int(args.warmup_frac * total)
    token_cache: dict[str, list[int]] = {}

    def ids_of(captions: list[str]) -> torch.Tensor:
        return torch.tensor([token_cache.setdefault(c, tokenizer.encode(c)) for c in captions], dtype=torch.long, device=device)

    step = 0
    schedule = TimedSchedule(total, warmup, args.max_minutes, t_start)
    stopped_early = False
    order: list[int] = []
    history = []
    model.text.train()
    while step < schedule.total:
        if len(order) < args.batch:
            order = list(range(n))
            rng.shuffle(order)
        idx = [order.pop() for _ in range(args.batch)]
        rows = idx + [i + n for i in idx]
        caps, stated = [], []
        for i in idx:
            it = items[i]
            keep, twin_keep = caption_variants(it.labels, it.twin_labels, rng)
            caps.append(it.caption if keep is None else compose_caption(it.labels, **keep))
            stated.append(mentioned(it.labels, keep))
        for i in idx:
            it = items[i]
            keep, twin_keep = caption_variants(it.twin_labels, it.labels, rng)
            caps.append(it.twin_caption if keep is None else compose_caption(it.twin_labels, **keep))
            stated.append(mentioned(it.twin_labels, keep))
        target = fit_matrix(torch.tensor([codes.row(s) for s in stated]), all_codes[torch.tensor(rows)]).to(device)  # [M caps, M imgs]

        for group in opt.param_groups:
            group["lr"] = args.lr * schedule.lr_factor(step)
        txt = model.encode_text(ids_of(caps))
        picked = torch.tensor(rows, device=device)
        loss = sum(weight * label_aware_infonce(model.logit_scale.exp() * txt @ emb[picked].t(), target) for emb, weight in locked)
        img = locked[0][0][picked]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)
        step += 1
        schedule.fit(step)
        if step % 50 == 0 or step == schedule.total:
            with torch.no_grad():
                b = args.batch
                sim = txt @ img.t()
                own = sim.diagonal()
                twin = torch.cat([sim[torch.arange(b), torch.arange(b) + b], sim[torch.arange(b) + b, torch.arange(b)]])
                twin_acc = (own > twin).float().mean().item()
            entry = {"step": step, "loss": round(loss.item(), 4), "twinAccText": round(twin_acc, 3)}
            history.append(entry)
            log(f"step {step}/{schedule.total} {json.dumps(entry)} scale {model.logit_scale.exp().item():.1f}")
        if schedule.spent(step):
            stopped_early = True
            break

    wall = time.time() - t_start
    recipe = {
        "image": clean_recipe,
        "text": {
            "method": (
                f"LiT: text tower trained against the locked clean and robust image towers (loss weights {1 - args.robust_weight:g} / {args.robust_weight:g})"
                if args.robust
                else "LiT: text tower trained against the locked clean image tower"
            ),
            "robustWeight": args.robust_weight if args.robust else 0.0,
            **({"tuning": {"dataSeed": args.tuning_seed, "chose": args.tuning_note}} if args.tuning_seed is not None else {}),
            "dataSeed": cat.meta.get("seed"),
            "items": n,
            "epochs": round(step / max(1, steps_per_epoch), 3),
            "steps": step,
            "batchCaptions": 2 * args.batch,
            "lr": args.lr,
            "weightDecay": args.wd,
            "loss": "symmetric InfoNCE with label-aware targets (a caption's positives: every batch image that fits all it states)",
            "captionDropout": "50% of captions drop attributes the twin shares",
            "stoppedEarly": stopped_early,
            "wallSeconds": round(wall, 1),
            "device": str(device),
            "torch": torch.__version__,
            "history": history[-3:],
        },
    }
    save_checkpoint(args.out, model, {"recipe": recipe})
    with open(args.out + ".json", "w", encoding="utf-8") as f:
        json.dump({"config": model.config(), "recipe": recipe}, f, indent=1)
    log(f"saved {args.out} after {step} steps in {wall / 60:.1f} min")
    if args.robust and args.robust_out:
        robust_model = CLIP(vision, text)
        robust_model.load_state_dict(model.state_dict(), strict=True)
        robust_model.visual.load_state_dict(robust_tower.state_dict(), strict=True)
        save_checkpoint(args.robust_out, robust_model, {"recipe": robust_recipe, "clean_recipe": recipe})
        with open(args.robust_out + ".json", "w", encoding="utf-8") as f:
            json.dump({"config": robust_model.config(), "recipe": robust_recipe, "clean_recipe": recipe}, f, indent=1)
        log(f"saved {args.robust_out} (the robust tower with the same text tower)")


if __name__ == "__main__":
    main()
