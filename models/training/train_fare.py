"""FARE: adversarially fine-tune the clean model's image tower so perturbed images keep their clean embeddings.

Minimises ``‖φ_θ(x+δ) − φ_clean(x)‖²₂`` (unnormalised embeddings, summed over dims, mean over the batch) with δ from
ℓ∞ PGD in [0, 1] pixel space before normalisation: uniform random start, ``--pgd-steps`` sign steps of
``--pgd-step-size`` with momentum 0.9 on the sign of the gradient, projection to the ε-ball, clamp to [0, 1]
(Schlarmann et al., ICML 2024; RobustVLM ``train/pgd_train.py``). φ_clean is frozen. Trains on the catalog's
originals and twins alike, and writes an image-tower checkpoint (``train_image.py``'s format, with the FARE recipe
and the clean tower's): the text tower is trained afterwards against both towers (``train_text.py --robust``).

    python3 train_fare.py --data work/train --clean work/image.pt --out work/fare4-image.pt
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch

from lookalike_clip.data import Normalizer, label_tensors, load_catalog, load_images, random_resized_crop, to_unit
from lookalike_clip.losses import fare_loss, pgd_fare, supcon_loss
from lookalike_clip.model import save_image_tower
from lookalike_clip.from_onnx import load_image_tower
from lookalike_clip.util import TimedSchedule, log, pick_device, setup_torch


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--clean", required=True, help="the clean image tower: train_image.py's checkpoint, a CLIP checkpoint or a model folder")
    p.add_argument("--out", required=True)
    p.add_argument("--eps", type=float, default=4.0, help="ℓ∞ radius in 1/255 units")
    p.add_argument("--pgd-steps", type=int, default=10)
    p.add_argument("--pgd-step-size", type=float, default=1.0, help="in 1/255 units")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--epochs", type=float, default=1.0, help="passes over all images (originals + twins)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--wd", type=float, default=1e-4)
    p.add_argument("--warmup-frac", type=float, default=0.07)
    p.add_argument("--eps-warmup-frac", type=float, default=0.0, help="ramp ε linearly from 0 over this share of the steps")
    p.add_argument("--clean-weight", type=float, default=0.0, help="weight of ‖φ(x) − φ_clean(x)‖² (TRADES-style anchor)")
    p.add_argument("--supcon-weight", type=float, default=0.0, help="weight of SupCon (same part+defect) on φ(x+δ)")
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--relative", action="store_true", help="divide the FARE terms by the batch's mean ‖φ_clean(x)‖²")
    p.add_argument("--max-minutes", type=float, default=0, help="stop early (and save) after this long; 0 = off")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    setup_torch(args.threads, args.seed)
    device = pick_device(args.device)
    t_start = time.time()

    tower, clean_recipe, _ = load_image_tower(args.clean)
    tower.to(device)
    size = tower.image_size
    cat = load_catalog(args.data)
    items = [it for it in cat.items if it.twin_file]
    images = torch.cat(
        [load_images(args.data, [it.file for it in items], size), load_images(args.data, [it.twin_file for it in items], size)]
    )  # [2N, 3, S, S] uint8
    labels, _ = label_tensors(cat, [it.labels for it in items] + [it.twin_labels for it in items])
    part_defect = labels["part_defect"]
    log(f"{images.shape[0]} images at {size} px")

    norm = Normalizer().to(device)
    frozen = copy.deepcopy(tower).eval().requires_grad_(False)
    tower.train()
    for m in tower.modules():  # BatchNorm keeps the clean statistics: adversarial batches must not shift them
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    opt = torch.optim.AdamW(tower.parameters(), lr=args.lr, weight_decay=args.wd)

    eps, alpha = args.eps / 255, args.pgd_step_size / 255
    steps_per_epoch = images.shape[0] // args.batch
    total = max(1, int(args.epochs * steps_per_epoch))
    warmup = int(args.warmup_frac * total)
    log(f"FARE ε={args.eps}/255, PGD {args.pgd_steps}×{args.pgd_step_size}/255; {total} steps of {args.batch} images")

    def embed(x: torch.Tensor) -> torch.Tensor:
        return tower(norm(x))

    gen = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(images.shape[0], generator=gen)
    cursor, step, seen = 0, 0, 0
    schedule = TimedSchedule(total, warmup, args.max_minutes, t_start)
    t_loop = schedule.t_loop
    stopped_early = False
    while step < schedule.total:
        if cursor + args.batch > perm.numel():
            perm, cursor = torch.randperm(images.shape[0], generator=gen), 0
        idx = perm[cursor : cursor + args.batch]
        cursor += args.batch
        x = random_resized_crop(to_unit(images[idx].to(device)))  # [B, 3, S, S] in [0, 1]
        with torch.no_grad():
            target = frozen(norm(x))
        ramp = min(1.0, (step + 1) / max(1, args.eps_warmup_frac * schedule.total)) if args.eps_warmup_frac > 0 else 1.0
        tower.requires_grad_(False)  # the attack needs input gradients only
        x_adv = pgd_fare(embed, x, target, eps * ramp, args.pgd_steps, alpha * ramp, args.momentum)
        tower.requires_grad_(True)

        for group in opt.param_groups:
            group["lr"] = args.lr * schedule.lr_factor(step)
        scale = target.pow(2).sum(1).mean().detach() if args.relative else 1.0
        adv_emb = embed(x_adv)
        loss = fare_loss(adv_emb, target) / scale
        if args.clean_weight > 0:
            loss = loss + args.clean_weight * fare_loss(embed(x), target) / scale
        if args.supcon_weight > 0:
            loss = loss + args.supcon_weight * supcon_loss(torch.nn.functional.normalize(adv_emb, dim=-1), part_defect[idx].to(device), args.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        seen += x.shape[0]
        schedule.fit(step)
        if step % 10 == 0 or step == schedule.total:
            with torch.no_grad():
                clean_loss = fare_loss(embed(x), target).item()
                cos = torch.nn.functional.cosine_similarity(embed(x_adv), target).mean().item()
            log(
                f"step {step}/{schedule.total} adv-loss {loss.item():.4f} clean-loss {clean_loss:.4f} adv-cos {cos:.3f} "
                f"|target|² {target.pow(2).sum(1).mean().item():.2f} {seen / (time.time() - t_loop):.1f} img/s"
            )
        if schedule.spent(step):
            stopped_early = True
            break

    wall = time.time() - t_start
    recipe = {
        "method": "FARE (unsupervised adversarial fine-tuning of the image tower)",
        "from": args.clean,
        "dataSeed": cat.meta.get("seed"),
        "images": int(images.shape[0]),
        "epsilon": f"{args.eps:g}/255",
        "norm": "linf",
        "pgdSteps": args.pgd_steps,
        "pgdStepSize": f"{args.pgd_step_size:g}/255",
        "pgdMomentum": args.momentum,
        "pgdStart": "uniform random in the eps-ball",
        "epsWarmupFrac": args.eps_warmup_frac,
        "cleanWeight": args.clean_weight,
        "supconWeight": args.supcon_weight,
        "relativeFare": args.relative,
        "batchNorm": "frozen (clean running statistics)",
        "epochs": round(step / max(1, steps_per_epoch), 3),
        "steps": step,
        "batch": args.batch,
        "lr": args.lr,
        "weightDecay": args.wd,
        "warmupSteps": schedule.warmup,
        "schedule": "warmup + cosine",
        "stoppedEarly": stopped_early,
        "wallSeconds": round(wall, 1),
        "device": str(device),
        "torch": torch.__version__,
    }
    save_image_tower(args.out, tower.eval(), {"recipe": recipe, "clean_recipe": clean_recipe})
    with open(args.out + ".json", "w", encoding="utf-8") as f:
        json.dump({"recipe": recipe}, f, indent=1)
    log(f"saved {args.out} after {step} steps in {wall / 60:.1f} min")


if __name__ == "__main__":
    main()
