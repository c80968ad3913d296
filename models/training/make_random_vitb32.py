"""Write a random-weight open_clip ViT-B/32 state dict (exact key names and shapes) to exercise export_openclip.py.

The key list is spelled out here from open_clip's layout (``visual.`` image tower; text tower at the top level),
independently of ``lookalike_clip.model``, so ``export_openclip.py``'s strict load really checks the naming.
About 350 MB for the image tower alone, 600 MB with ``--with-text``. Never commit the output.

    python3 make_random_vitb32.py --out work/vitb32-random.pt [--with-text]
"""

from __future__ import annotations

import argparse
import os

import torch


def block_shapes(prefix: str, width: int) -> dict[str, tuple[int, ...]]:
    """One ``ResidualAttentionBlock`` (MLP ratio 4)."""
    hidden = 4 * width
    return {
        f"{prefix}.ln_1.weight": (width,),
        f"{prefix}.ln_1.bias": (width,),
        f"{prefix}.attn.in_proj_weight": (3 * width, width),
        f"{prefix}.attn.in_proj_bias": (3 * width,),
        f"{prefix}.attn.out_proj.weight": (width, width),
        f"{prefix}.attn.out_proj.bias": (width,),
        f"{prefix}.ln_2.weight": (width,),
        f"{prefix}.ln_2.bias": (width,),
        f"{prefix}.mlp.c_fc.weight": (hidden, width),
        f"{prefix}.mlp.c_fc.bias": (hidden,),
        f"{prefix}.mlp.c_proj.weight": (width, hidden),
        f"{prefix}.mlp.c_proj.bias": (width,),
    }


def vitb32_shapes(with_text: bool) -> dict[str, tuple[int, ...]]:
    width, layers, patch, grid, embed = 768, 12, 32, 7, 512
    shapes: dict[str, tuple[int, ...]] = {
        "visual.class_embedding": (width,),
        "visual.positional_embedding": (grid * grid + 1, width),
        "visual.proj": (width, embed),
        "visual.conv1.weight": (width, 3, patch, patch),
        "visual.ln_pre.weight": (width,),
        "visual.ln_pre.bias": (width,),
    }
    for i in range(layers):
        shapes.update(block_shapes(f"visual.transformer.resblocks.{i}", width))
    shapes["visual.ln_post.weight"] = (width,)
    shapes["visual.ln_post.bias"] = (width,)
    if with_text:
        tw = 512
        shapes.update(
            {
                "positional_embedding": (77, tw),
                "text_projection": (tw, embed),
                "logit_scale": (),
                "token_embedding.weight": (49408, tw),
                "ln_final.weight": (tw,),
                "ln_final.bias": (tw,),
            }
        )
        for i in range(12):
            shapes.update(block_shapes(f"transformer.resblocks.{i}", tw))
    return shapes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--with-text", action="store_true", help="also write the text tower (open_clip full-model layout)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    state = {}
    for key, shape in vitb32_shapes(args.with_text).items():
        if key.endswith(("ln_1.weight", "ln_2.weight", "ln_pre.weight", "ln_post.weight", "ln_final.weight")):
            state[key] = torch.ones(shape)
        elif key.endswith("bias"):
            state[key] = torch.zeros(shape)
        elif key == "logit_scale":
            state[key] = torch.tensor(4.6052)
        else:
            fan_in = shape[-1] if len(shape) > 1 else shape[0]
            state[key] = torch.randn(shape) * fan_in**-0.5
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save(state, args.out)
    n = sum(t.numel() for t in state.values())
    print(f"wrote {args.out}: {len(state)} tensors, {n / 1e6:.1f}M parameters, {os.path.getsize(args.out) / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
