"""PyTorch side of bench/encoder.ts: builds seeded random-weight image towers (throughput does not depend on the
weights), exports each to ONNX with a manifest for packages/encoder, and measures PyTorch's image-embedding
throughput on the same image files with the reference preprocessing (PIL decode, bicubic resize, centre crop,
ToTensor, Normalize). Also measures the machine's float32 matmul rate. Prints one JSON document.

    /usr/bin/python3 bench/encoder_torch.py --out bench/.cache/encoder --images DIR --models tiny,vitb32 \
        --batches 1,16 --seconds 8 --threads 2
"""

import argparse
import glob
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "training"))
from lookalike_clip.data import CLIP_MEAN, CLIP_STD, resize_center_crop  # noqa: E402
from lookalike_clip.model import VIT_B_32, VisionConfig, VisionTransformer  # noqa: E402
from lookalike_clip.onnx_export import export_image_tower, image_manifest, write_manifest  # noqa: E402

CONFIGS = {"tiny": VisionConfig(), "vitb32": VIT_B_32}


def macs_per_image(c: VisionConfig) -> int:
    """Multiply-accumulates of one forward pass: patch embedding, L blocks (QKV, attention, output, MLP), proj."""
    patches = (c.image_size // c.patch_size) ** 2
    t, w, hidden = patches + 1, c.width, int(c.width * c.mlp_ratio)
    block = 4 * t * w * w + 2 * t * t * w + 2 * t * w * hidden
    return patches * 3 * c.patch_size**2 * w + c.layers * block + w * c.output_dim


def matmul_gflops(threads: int, n: int = 1024, seconds: float = 3.0) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--models", default="tiny,vitb32")
    p.add_argument("--batches", default="1,16")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    files = sorted(glob.glob(os.path.join(args.images, "*.png")))[:64]
    if args.seconds > 0 and not files:
        sys.exit(f"no PNG images in {args.images}")
    gflops = matmul_gflops(args.threads) if args.seconds > 0 else 0.0
    result = {"torch": torch.__version__, "threads": args.threads, "matmulGflops": gflops, "models": {}}
    for name in args.models.split(","):
        cfg = CONFIGS[name]
        torch.manual_seed(0)
        tower = VisionTransformer(cfg).eval()
        model_id = f"bench-{name}"
        model_dir = os.path.join(args.out, model_id)
        onnx_path = os.path.join(model_dir, "model.onnx")
        if not os.path.exists(os.path.join(model_dir, "manifest.json")):
            os.makedirs(model_dir, exist_ok=True)
            export_image_tower(tower, onnx_path)
            write_manifest(image_manifest(model_id, "clean", tower, onnx_path, f"random-weight {name} for benchmarks"), model_dir)
        pre = transforms.Compose([transforms.ToTensor(), transforms.Normalize(CLIP_MEAN, CLIP_STD)])
        rows = []
        for batch in [int(b) for b in args.batches.split(",")] if args.seconds > 0 else []:
            def step(i: int) -> None:
                chunk = [files[(i * batch + k) % len(files)] for k in range(batch)]
                xs = []
                for f in chunk:
                    with Image.open(f) as im:
                        xs.append(pre(resize_center_crop(im, cfg.image_size)))
                with torch.inference_mode():
                    F.normalize(tower(torch.stack(xs)), dim=-1)
            step(0)
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < args.seconds:
                step(n)
                n += 1
            rows.append({"batch": batch, "imagesPerSecond": n * batch / (time.perf_counter() - t0)})
        result["models"][name] = {
            "id": model_id,
            "dir": model_dir,
            "macsPerImage": macs_per_image(cfg),
            "params": sum(p.numel() for p in tower.parameters()),
            "torch": rows,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
