"""Checks the TypeScript attack against PyTorch autograd on the same weights.

Rebuilds the exported clean tower in PyTorch from its ONNX file (a ViT: every weight copied from the ONNX
initialisers; a CNN: its graph run op by op by ``lookalike_clip.onnx_torch``), then the outputs checked against onnxruntime), runs ℓ∞ PGD with autograd from the same random start
that ``packages/attacks`` draws (its mulberry32 generator, reimplemented here bit for bit), the same ε, steps and
step size, and keeps each query's best loss 1 − cos(φ(x+δ), φ(x)). Then runs the TypeScript PGD on the same images
(``packages/attacks/scripts/compare-pgd.ts``) and compares. Writes ``models/fixtures/pgd-comparison.json`` (the
model card and a vitest test read it).

    /usr/bin/python3 models/training/compare_pgd.py [--model defect-cnn-clean]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from lookalike_clip.model import VisionConfig, VisionTransformer  # noqa: E402
from lookalike_clip.onnx_export import run_onnx_node  # noqa: E402
from lookalike_clip.onnx_torch import OnnxModule  # noqa: E402

M32 = 0xFFFFFFFF
TOLERANCE = 1e-3


def mulberry32(seed: int):
    """packages/attacks/src/random.ts's generator: the same uint32 operations, the same floats in [0, 1)."""
    a = seed & M32

    def imul(x: int, y: int) -> int:
        return (x * y) & M32

    def rnd() -> float:
        nonlocal a
        a = (a + 0x6D2B79F5) & M32
        t = a
        t = imul(t ^ (t >> 15), t | 1)
        t = (t ^ ((t + imul(t ^ (t >> 7), t | 61)) & M32)) & M32
        return ((t ^ (t >> 14)) & M32) / 4294967296

    return rnd


def tower_from_onnx(model_dir: str) -> tuple[torch.nn.Module, dict]:
    manifest = json.load(open(os.path.join(model_dir, "manifest.json")))
    arch = manifest["architecture"]
    if arch.get("kind") == "conv":
        # The CNN towers' graphs are run op by op (BatchNorm is folded into their convolutions at export).
        return OnnxModule(os.path.join(model_dir, "model.onnx")).eval(), manifest
    cfg = VisionConfig(
        image_size=arch["image_size"],
        patch_size=arch["patch_size"],
        width=arch["width"],
        layers=arch["layers"],
        heads=arch["heads"],
        mlp_ratio=arch["mlp_ratio"],
        output_dim=arch["output_dim"],
        act=arch["act"],
    )
    tower = VisionTransformer(cfg)
    graph = onnx.load(os.path.join(model_dir, "model.onnx")).graph
    named = {i.name[len("tower.") :]: numpy_helper.to_array(i) for i in graph.initializer if i.name.startswith("tower.")}
    # Constant folding renamed these (in module order): class and positional embeddings, then per block the
    # transposed in_proj, c_fc and c_proj weights.
    folded = [numpy_helper.to_array(i) for i in graph.initializer if not i.name.startswith("tower.")]
    state = dict(named)
    state["class_embedding"], state["positional_embedding"] = folded[0], folded[1]
    for b in range(cfg.layers):
        p = f"transformer.resblocks.{b}."
        state[p + "attn.in_proj_weight"] = folded[2 + 3 * b].T
        state[p + "mlp.c_fc.weight"] = folded[3 + 3 * b].T
        state[p + "mlp.c_proj.weight"] = folded[4 + 3 * b].T
    tower.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}, strict=True)
    return tower.eval(), manifest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="defect-cnn-clean")
    p.add_argument("--out", default=os.path.join(ROOT, "models", "fixtures", "pgd-comparison.json"))
    args = p.parse_args()
    torch.manual_seed(0)
    model_dir = os.path.join(ROOT, "models", args.model)
    tower, manifest = tower_from_onnx(model_dir)
    spec = manifest["input"]
    mean = torch.tensor(spec["mean"], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(spec["std"], dtype=torch.float32).view(1, 3, 1, 1)

    def embed(pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(tower((pixels - mean) / std), dim=-1)

    images = sorted(
        os.path.join("models", "fixtures", "images", f)
        for f in os.listdir(os.path.join(ROOT, "models", "fixtures", "images"))
        if f.endswith(f".{spec['size']}px.png")
    )
    # Exactly what the TypeScript side computes: v/255 in double, rounded to float32, channel-first.
    x64 = np.stack([np.asarray(Image.open(os.path.join(ROOT, f)).convert("RGB"), dtype=np.float64).transpose(2, 0, 1) / 255 for f in images])
    x = torch.from_numpy(x64.astype(np.float32))
    with torch.no_grad():
        ref = embed(x)

    # The PyTorch tower must be the ONNX tower before its attack means anything.
    onnx_out = run_onnx_node(os.path.join(model_dir, "model.onnx"), ((x - mean) / std).numpy(), spec["name"])
    parity = float(np.abs(onnx_out - ref.numpy()).max())
    if parity > 1e-4:
        raise SystemExit(f"the rebuilt PyTorch tower differs from the ONNX file by {parity:.2e}; the weight mapping is wrong")

    runs = []
    for eps_255, steps in [(1, 10), (4, 10), (4, 50)]:
        eps = eps_255 / 255
        runs.append({"epsilon": eps, "steps": steps, "stepSize": 2.5 * eps / steps, "seed": 100 + eps_255 * 10 + steps})

    torch_losses = []
    for run in runs:
        eps, alpha = run["epsilon"], run["stepSize"]
        rnd = mulberry32(run["seed"])
        u = np.array([rnd() for _ in range(x64.size)], dtype=np.float64).reshape(x64.shape)
        start = (x64 + eps * (2 * u - 1)).astype(np.float32).astype(np.float64)
        lo, hi = np.maximum(0, x64 - eps), np.minimum(1, x64 + eps)
        x_adv = torch.from_numpy(np.clip(start, lo, hi).astype(np.float32))
        lo_t, hi_t = torch.from_numpy(lo.astype(np.float32)), torch.from_numpy(hi.astype(np.float32))
        best = torch.full((x.shape[0],), -float("inf"))
        for _ in range(run["steps"]):
            x_adv.requires_grad_(True)
            loss = 1 - (embed(x_adv) * ref).sum(-1)
            (grad,) = torch.autograd.grad(loss.sum(), x_adv)
            with torch.no_grad():
                best = torch.maximum(best, loss.detach())
                x_adv = torch.minimum(torch.maximum(x_adv + alpha * grad.sign(), lo_t), hi_t)
        with torch.no_grad():
            best = torch.maximum(best, 1 - (embed(x_adv) * ref).sum(-1))
        torch_losses.append(best.tolist())

    settings = {"modelDir": os.path.join("models", args.model), "images": images, "runs": runs}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(settings, f)
    out = subprocess.run(
        ["npx", "tsx", "--conditions=source", "packages/attacks/scripts/compare-pgd.ts", f.name],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    os.unlink(f.name)
    ts_losses = json.loads(out.stdout.strip().splitlines()[-1])["losses"]

    report = {
        "model": args.model,
        "tolerance": TOLERANCE,
        "torch": torch.__version__,
        "onnxParityMaxAbs": parity,
        "images": images,
        "runs": [
            {
                **run,
                "torchLoss": tl,
                "tsLoss": sl,
                "torchMean": float(np.mean(tl)),
                "tsMean": float(np.mean(sl)),
            }
            for run, tl, sl in zip(runs, torch_losses, ts_losses)
        ],
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"PyTorch tower rebuilt from ONNX: max |Δ| {parity:.1e} against onnxruntime")
    # Both start from the same point and take the same signed steps, so they differ only where float32 rounding
    # flips the sign of a near-zero gradient component; TOLERANCE bounds that noise on a loss in [0, 2].
    print(f"| ε | steps | step | PyTorch mean loss | TypeScript mean loss | TS − PyTorch | TS ≥ PyTorch − {TOLERANCE} |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in report["runs"]:
        ok = r["tsMean"] >= r["torchMean"] - TOLERANCE
        print(
            f"| {round(r['epsilon'] * 255)}/255 | {r['steps']} | {r['stepSize']:.2e} | {r['torchMean']:.5f} | {r['tsMean']:.5f} "
            f"| {r['tsMean'] - r['torchMean']:+.1e} | {'yes' if ok else 'NO'} |"
        )


if __name__ == "__main__":
    main()
