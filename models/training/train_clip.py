"""Train the clean tiny CLIP on a synthetic catalog with edited twins as hard negatives.

Each step draws B catalog items and feeds 2B images ``[originals; twins]`` with their 2B captions to the symmetric
hard-negative loss (``lookalike_clip.losses.hard_negative_clip_loss``). Half the pairs use the catalog's captions,
the other half the same grammar with shared attributes dropped (so short prompts such as "a bracket with a crack"
work); the edited attribute is never dropped. Augmentation is a light random-resized crop only (no flips: positions
are labels).

    python3 train_clip.py --data work/train --out work/clean.pt --tokenizer-out work/tokenizer.json
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch

from lookalike_clip.data import (
    Normalizer,
    caption_variants,
    compose_caption,
    load_catalog,
    load_images,
    prompt_words,
    random_resized_crop,
    same_caption_mask,
    to_unit,
)
from lookalike_clip.losses import hard_negative_clip_loss
from lookalike_clip.model import CLIP, TextConfig, VisionConfig, save_checkpoint
from lookalike_clip.tokenizer import EOT_ID, WordTokenizer
from lookalike_clip.util import TimedSchedule, log, pick_device, setup_torch


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="catalog directory written by `lookalike synth --twins`")
    p.add_argument("--out", required=True, help="checkpoint path (.pt)")
    p.add_argument("--tokenizer-out", required=True, help="where to write tokenizer.json (+ tokenizer_config.json)")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--patch-size", type=int, default=12)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--embed-dim", type=int, default=128)
    p.add_argument("--text-width", type=int, default=128)
    p.add_argument("--text-layers", type=int, default=3)
    p.add_argument("--context-length", type=int, default=32)
    p.add_argument("--epochs", type=float, default=6.0)
    p.add_argument("--batch", type=int, default=128, help="catalog items per step (2x images with twins)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--wd", type=float, default=0.1)
    p.add_argument("--warmup-frac", type=float, default=0.05)
    p.add_argument("--max-minutes", type=float, default=0, help="stop early (and save) after this long; 0 = off")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    setup_torch(args.threads, args.seed)
    device = pick_device(args.device)
    rng = random.Random(args.seed)
    t_start = time.time()

    cat = load_catalog(args.data)
    items = [it for it in cat.items if it.twin_file]
    if not items:
        raise SystemExit(f"{args.data}: no items with twins; generate the catalog with --twins")
    vocab_words = [w for values in cat.vocabulary.values() for w in values] + prompt_words()
    texts = [it.caption for it in items] + [it.twin_caption for it in items]
    tokenizer = WordTokenizer.build(texts, args.context_length, extra_words=vocab_words)
    tokenizer.save(args.tokenizer_out, args.tokenizer_out.replace("tokenizer.json", "tokenizer_config.json"))
    log(f"{len(items)} items with twins; vocabulary of {tokenizer.vocab_size} tokens")

    originals = load_images(args.data, [it.file for it in items], args.image_size)
    twins = load_images(args.data, [it.twin_file for it in items], args.image_size)
    log(f"decoded {2 * len(items)} images at {args.image_size} px in {time.time() - t_start:.0f}s")

    vision = VisionConfig(
        image_size=args.image_size,
        patch_size=args.patch_size,
        width=args.width,
        layers=args.layers,
        heads=args.heads,
        output_dim=args.embed_dim,
    )
    text = TextConfig(
        vocab_size=tokenizer.vocab_size,
        context_length=args.context_length,
        width=args.text_width,
        layers=args.text_layers,
        heads=4,
        output_dim=args.embed_dim,
        eot_id=EOT_ID,
    )
    model = CLIP(vision, text).to(device)
    norm = Normalizer().to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    steps_per_epoch = len(items) // args.batch
    total = max(1, int(args.epochs * steps_per_epoch))
    warmup = int(args.warmup_frac * total)
    log(
        f"image tower {sum(p.numel() for p in model.visual.parameters()) / 1e6:.2f}M params, text tower "
        f"{sum(p.numel() for p in model.text.parameters()) / 1e6:.2f}M; {total} steps of {2 * args.batch} images"
    )

    token_cache: dict[str, list[int]] = {}

    def ids_of(captions: list[str]) -> torch.Tensor:
        rows = [token_cache.setdefault(c, tokenizer.encode(c)) for c in captions]
        return torch.tensor(rows, dtype=torch.long, device=device)

    step, seen = 0, 0
    schedule = TimedSchedule(total, warmup, args.max_minutes, t_start)
    t_loop = schedule.t_loop
    stopped_early = False
    order: list[int] = []
    model.train()
    while step < schedule.total:
        if len(order) < args.batch:
            order = list(range(len(items)))
            rng.shuffle(order)
        idx = [order.pop() for _ in range(args.batch)]
        caps, twin_caps = [], []
        for i in idx:
            it = items[i]
            keep, twin_keep = caption_variants(it.labels, it.twin_labels, rng)
            caps.append(it.caption if keep is None else compose_caption(it.labels, **keep))
            twin_caps.append(it.twin_caption if twin_keep is None else compose_caption(it.twin_labels, **twin_keep))
        index = torch.tensor(idx)
        pixels = torch.cat([originals[index], twins[index]]).to(device)  # [2B, 3, S, S] uint8
        x = norm(random_resized_crop(to_unit(pixels)))
        all_caps = caps + twin_caps
        ids = ids_of(all_caps)

        for group in opt.param_groups:
            group["lr"] = args.lr * schedule.lr_factor(step)
        img = model.encode_image(x)
        txt = model.encode_text(ids)
        loss = hard_negative_clip_loss(img, txt, model.logit_scale, same_caption_mask(all_caps).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)  # ≤ 100, as CLIP
        step += 1
        seen += x.shape[0]

        schedule.fit(step)
        if step % 25 == 0 or step == schedule.total:
            with torch.no_grad():
                b = args.batch
                sim = img @ txt.t()
                own = sim.diagonal()[:b]
                twin_acc = (own > sim[torch.arange(b), torch.arange(b) + b]).float().mean().item()
            rate = seen / (time.time() - t_loop)
            log(
                f"step {step}/{schedule.total} loss {loss.item():.4f} scale {model.logit_scale.exp().item():.1f} "
                f"twin-acc {twin_acc:.3f} lr {opt.param_groups[0]['lr']:.2e} {rate:.0f} img/s"
            )
        if schedule.spent(step):
            stopped_early = True
            break

    wall = time.time() - t_start
    recipe = {
        "data": args.data,
        "dataSeed": cat.meta.get("seed"),
        "generator": cat.meta.get("generator"),
        "items": len(items),
        "imagesPerEpoch": 2 * len(items),
        "epochs": round(step / max(1, steps_per_epoch), 3),
        "steps": step,
        "batchItems": args.batch,
        "batchImages": 2 * args.batch,
        "lr": args.lr,
        "weightDecay": args.wd,
        "warmupSteps": schedule.warmup,
        "schedule": "warmup + cosine",
        "augmentation": "random resized crop, scale 0.88-1, aspect 1/1.06-1.06, no flips",
        "loss": "symmetric InfoNCE over [originals; twins] (twins as hard negatives), identical captions masked",
        "captionDropout": "50% of pairs drop attributes the twin shares",
        "stoppedEarly": stopped_early,
        "wallSeconds": round(wall, 1),
        "device": str(device),
        "torch": torch.__version__,
    }
    save_checkpoint(args.out, model, {"recipe": recipe})
    with open(args.out + ".json", "w", encoding="utf-8") as f:
        json.dump({"config": model.config(), "recipe": recipe}, f, indent=1)
    log(f"saved {args.out} after {step} steps in {wall / 60:.1f} min")


if __name__ == "__main__":
    main()
