"""Evaluate the clean and FARE image towers (sharing one text tower) on a held-out catalog; writes metrics JSON.

Metrics, per image tower, on the held-out originals (gallery = all held-out originals):
- zero-shot defect (8 classes) and part (8 classes) accuracy from text prompts ("a bolt with a crack", … ensembled
  over parts; "a bolt", …);
- text→image recall@10: a caption's own image among the 10 nearest images;
- image→image precision@10: share of the 10 nearest other images with the query's part and defect;
- twin accuracy: an image (original or twin) is closer to its own caption than to its twin's caption; and the
  text side, a caption closer to its own image than to the twin image;
- image→image precision@10 under ℓ∞ PGD-20 at ε = 1, 2, 4/255 on the first ``--attack-queries`` queries
  (untargeted loss 1 − cos(φ(x+δ), φ(x)), random start, step 2.5ε/20, best iterate; gallery stays clean).

    python3 evaluate.py --data work/test --clean work/clean.pt --robust work/fare4.pt --out work/metrics.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from lookalike_clip.data import (
    DEFECTS,
    PARTS,
    Normalizer,
    compose_caption,
    defect_prompts,
    load_catalog,
    load_images,
    part_prompts,
    to_unit,
)
from lookalike_clip.losses import pgd_cosine
from lookalike_clip.model import load_checkpoint
from lookalike_clip.tokenizer import WordTokenizer
from lookalike_clip.util import log, pick_device, setup_torch


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--clean", required=True)
    p.add_argument("--robust", required=True)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--attack-queries", type=int, default=400)
    p.add_argument("--attack-steps", type=int, default=20)
    p.add_argument("--eps", default="1,2,4", help="comma-separated ε values in 1/255 units")
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=123)
    return p.parse_args()


@torch.no_grad()
def embed_batched(fn, x: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    return torch.cat([F.normalize(fn(x[i : i + batch].to(device)), dim=-1).cpu() for i in range(0, len(x), batch)])


def precision_at_k(q: torch.Tensor, gallery: torch.Tensor, q_index: torch.Tensor, keys: list, k: int = 10) -> float:
    """Mean share of the k nearest gallery rows (the query's own row excluded) whose key equals the query's key."""
    sim = q @ gallery.t()
    sim[torch.arange(len(q)), q_index] = float("-inf")
    top = sim.topk(k, dim=1).indices
    hits = [sum(keys[j] == keys[int(qi)] for j in row.tolist()) / k for qi, row in zip(q_index, top)]
    return sum(hits) / len(hits)


FACETS = ("partDefect", "defect", "defectDefectiveQueries", "part", "color", "background")


def facet_keys(labels: dict) -> dict:
    return {
        "partDefect": (labels["part"], labels["defect"]),
        "defect": labels["defect"],
        "defectDefectiveQueries": labels["defect"],
        "part": labels["part"],
        "color": labels["color"],
        "background": labels.get("background"),
    }


def facet_precision(q: torch.Tensor, gallery: torch.Tensor, q_index: torch.Tensor, labels: list, k: int = 10) -> dict:
    """precision@k per facet (the query's own row excluded); ``defectDefectiveQueries`` averages over queries whose
    defect is not "none" only."""
    sim = q @ gallery.t()
    sim[torch.arange(len(q)), q_index] = float("-inf")
    top = sim.topk(k, dim=1).indices.tolist()
    keys = [facet_keys(lab) for lab in labels]
    out = {}
    for f in FACETS:
        vals = [
            sum(keys[j][f] == keys[int(qi)][f] for j in row) / k
            for qi, row in zip(q_index.tolist(), top)
            if f != "defectDefectiveQueries" or labels[int(qi)]["defect"] != "none"
        ]
        out[f] = sum(vals) / max(1, len(vals))
    return out


def facet_chance(labels: list) -> dict:
    """Expected precision of a random other gallery item, averaged over queries (same rule as facet_precision)."""
    from collections import Counter

    n = len(labels)
    keys = [facet_keys(lab) for lab in labels]
    out = {}
    for f in FACETS:
        counts = Counter(k[f] for k in keys)
        vals = [(counts[keys[i][f]] - 1) / (n - 1) for i in range(n) if f != "defectDefectiveQueries" or labels[i]["defect"] != "none"]
        out[f] = sum(vals) / max(1, len(vals))
    return out


def prompt_precision(text_emb: torch.Tensor, img: torch.Tensor, prompt_keys: list, labels: list, k: int = 10) -> dict:
    """Text→image precision@k of "a <part> with a <defect>" prompts: share of the k returned images with the
    prompt's part+defect, its part, its defect."""
    top = (text_emb @ img.t()).topk(k, dim=1).indices.tolist()
    rows = []
    for (part, defect), row in zip(prompt_keys, top):
        rows.append(
            {
                "partDefect": sum(labels[j]["part"] == part and labels[j]["defect"] == defect for j in row) / k,
                "part": sum(labels[j]["part"] == part for j in row) / k,
                "defect": sum(labels[j]["defect"] == defect for j in row) / k,
                "defective": defect != "none",
            }
        )
    mean = lambda rs, f: sum(r[f] for r in rs) / max(1, len(rs))  # noqa: E731
    out = {f: mean(rows, f) for f in ("partDefect", "part", "defect")}
    out["partDefectDefectivePrompts"] = mean([r for r in rows if r["defective"]], "partDefect")
    out["partDefectNoDefectPrompts"] = mean([r for r in rows if not r["defective"]], "partDefect")
    return out


def main() -> None:
    args = parse_args()
    setup_torch(args.threads, args.seed)
    device = pick_device(args.device)
    t0 = time.time()

    clean, clean_blob = load_checkpoint(args.clean)
    robust, robust_blob = load_checkpoint(args.robust)
    clean.to(device).eval()
    robust.to(device).eval()
    tok = WordTokenizer.load(args.tokenizer)
    size = clean.visual.image_size

    cat = load_catalog(args.data)
    items = [it for it in cat.items if it.twin_file]
    n = len(items)
    originals = load_images(args.data, [it.file for it in items], size)
    twins = load_images(args.data, [it.twin_file for it in items], size)
    norm = Normalizer().to(device)
    keys = [(it.labels["part"], it.labels["defect"]) for it in items]

    def text_emb(texts: list[str]) -> torch.Tensor:
        ids = torch.tensor(tok.encode_batch(texts), dtype=torch.long)
        return embed_batched(clean.text, ids, args.batch, device)

    captions = text_emb([it.caption for it in items])
    twin_captions = text_emb([it.twin_caption for it in items])
    defect_classes = torch.stack([F.normalize(text_emb(defect_prompts(d)).mean(0), dim=0) for d in DEFECTS])
    part_classes = torch.stack([F.normalize(text_emb(part_prompts(p)).mean(0), dim=0) for p in PARTS])
    labels = [it.labels for it in items]
    prompt_keys = [(p, d) for p in PARTS for d in DEFECTS]
    prompts = text_emb(
        [compose_caption({"part": p, "color": "", "material": "", "defect": d, "position": None}, color=False, material=False) for p, d in prompt_keys]
    )
    defect_truth = torch.tensor([DEFECTS.index(it.labels["defect"]) for it in items])
    part_truth = torch.tensor([PARTS.index(it.labels["part"]) for it in items])

    results: dict = {
        "data": {"seed": cat.meta.get("seed"), "items": n, "images": 2 * n, "path": args.data},
        "attack": {
            "norm": "linf",
            "steps": args.attack_steps,
            "stepSize": "2.5*eps/steps",
            "loss": "1 - cos(phi(x+delta), phi(x))",
            "randomStart": True,
            "queries": min(args.attack_queries, n),
            "gallery": n,
        },
        "chance": facet_chance(labels),
        "towers": {},
    }
    q_count = min(args.attack_queries, n)
    q_index = torch.arange(q_count)
    all_index = torch.arange(n)
    for name, model in (("clean", clean), ("robust", robust)):
        t_tower = time.time()
        tower = model.visual

        def fn(x: torch.Tensor) -> torch.Tensor:
            return tower(norm(to_unit(x)))

        img = embed_batched(fn, originals, args.batch, device)
        twin_img = embed_batched(fn, twins, args.batch, device)
        zs_defect = ((img @ defect_classes.t()).argmax(1) == defect_truth).float().mean().item()
        zs_part = ((img @ part_classes.t()).argmax(1) == part_truth).float().mean().item()
        t2i = captions @ img.t()  # [n captions, n images]
        top = t2i.topk(10, dim=1).indices
        recall10 = (top == all_index[:, None]).any(1).float().mean().item()
        own = (img * captions).sum(1)
        twin_img_own = (twin_img * twin_captions).sum(1)
        twin_acc_image = torch.cat(
            [own > (img * twin_captions).sum(1), twin_img_own > (twin_img * captions).sum(1)]
        ).float().mean().item()
        twin_acc_text = (own > (captions * twin_img).sum(1)).float().mean().item()
        p10 = precision_at_k(img, img, all_index, keys)
        p10_subset = precision_at_k(img[:q_count], img, q_index, keys)
        facets = facet_precision(img, img, all_index, labels)
        facets_subset = facet_precision(img[:q_count], img, q_index, labels)
        prompt_p10 = prompt_precision(prompts, img, prompt_keys, labels)

        attacked = {}
        for eps in [float(e) for e in args.eps.split(",")]:
            t_eps = time.time()
            adv_emb = []
            for i in range(0, q_count, args.batch):
                x = to_unit(originals[i : min(q_count, i + args.batch)].to(device))
                adv = pgd_cosine(lambda z: tower(norm(z)), x, eps / 255, steps=args.attack_steps)
                with torch.no_grad():
                    adv_emb.append(F.normalize(tower(norm(adv)), dim=-1).cpu())
            adv_emb = torch.cat(adv_emb)
            attacked[f"{eps:g}/255"] = {
                "precisionAt10": precision_at_k(adv_emb, img, q_index, keys),
                "facetPrecisionAt10": facet_precision(adv_emb, img, q_index, labels),
                "meanCosToClean": (adv_emb * img[:q_count]).sum(1).mean().item(),
            }
            log(f"{name}: ε={eps:g}/255 P@10 {attacked[f'{eps:g}/255']['precisionAt10']:.3f} ({time.time() - t_eps:.0f}s)")
        results["towers"][name] = {
            "zeroShotDefectAccuracy": zs_defect,
            "zeroShotPartAccuracy": zs_part,
            "textToImageRecallAt10": recall10,
            "imageToImagePrecisionAt10": p10,
            "imageToImagePrecisionAt10AttackQueries": p10_subset,
            "facetPrecisionAt10": facets,
            "facetPrecisionAt10AttackQueries": facets_subset,
            "promptPrecisionAt10": prompt_p10,
            "twinAccuracyImage": twin_acc_image,
            "twinAccuracyText": twin_acc_text,
            "attacked": attacked,
            "evalSeconds": round(time.time() - t_tower, 1),
        }
        log(f"{name}: {json.dumps(results['towers'][name])}")
    results["recipes"] = {"clean": clean_blob.get("recipe"), "robust": robust_blob.get("recipe")}
    results["evalSeconds"] = round(time.time() - t0, 1)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
