"""Export real open_clip ViT checkpoints (e.g. ViT-B/32) through the same tower definition and manifest contract.

Loads a local state dict — a full open_clip model (``visual.*`` + text keys), an open_clip training checkpoint
(``{"state_dict": …}``, ``module.`` prefixes) or a bare image tower — into ``lookalike_clip.model`` with
``strict=True``, infers the tower shape from the weights, and writes ``<models-dir>/<id>/{model.onnx,manifest.json}``.
With ``--text-id`` and ``--tokenizer`` it also exports the text tower (open_clip BPE: SOT 49406, EOT 49407, pad 0).

Exporting the real pair (weights fetched elsewhere, e.g. with ``open_clip``/``huggingface_hub`` on a connected
machine, then ``torch.save(model.state_dict(), path)``):

    # clean baseline: open_clip ViT-B-32, pretrained laion2b_s34b_b79k
    python3 export_openclip.py --checkpoint vitb32-laion2b.pt --role clean --id vit-b-32-laion2b \
        --text-id vit-b-32-laion2b-text --tokenizer clip-tokenizer.json --models-dir ../
    # robust: hf-hub:chs20/FARE4-ViT-B-32-laion2B-s34B-b79K (same text tower as the clean model)
    python3 export_openclip.py --checkpoint fare4-vitb32.pt --role robust --id vit-b-32-fare4 --models-dir ../

``clip-tokenizer.json`` is the Hugging Face ``tokenizer.json`` of a CLIP ViT-B/32 repository (e.g.
``laion/CLIP-ViT-B-32-laion2B-s34B-b79K``), which encodes text exactly as open_clip's tokenizer does.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import time

import torch

from lookalike_clip.model import TextConfig, TextTransformer, VisionConfig, VisionTransformer
from lookalike_clip.onnx_export import (
    compare_with_torch,
    export_image_tower,
    export_text_tower,
    image_manifest,
    text_manifest,
    write_manifest,
)
from lookalike_clip.util import log

_BLOCK = re.compile(r"transformer\.resblocks\.(\d+)\.")


def load_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Tensor dict from a state-dict file; unwraps ``state_dict`` and strips DistributedDataParallel's ``module.``."""
    blob = torch.load(path, map_location="cpu")
    if isinstance(blob, dict) and "state_dict" in blob and isinstance(blob["state_dict"], dict):
        blob = blob["state_dict"]
    if not isinstance(blob, dict):
        raise SystemExit(f"{path}: not a state dict (got {type(blob).__name__})")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in blob.items()}


def split_towers(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """``(image, text)`` state dicts: ``visual.*`` without the prefix, and the text keys (``logit_scale`` and the
    non-persistent ``attn_mask`` dropped). A dict without ``visual.`` keys is taken as a bare image tower."""
    if any(k.startswith("visual.") for k in state):
        image = {k[len("visual.") :]: v for k, v in state.items() if k.startswith("visual.")}
        text = {k: v for k, v in state.items() if not k.startswith("visual.") and k not in ("logit_scale", "attn_mask")}
        return image, text
    return dict(state), {}


def _layers(state: dict) -> int:
    return 1 + max(int(m.group(1)) for k in state if (m := _BLOCK.match(k)))


def vision_config(state: dict, act: str) -> VisionConfig:
    """Tower shape read off the weights; heads = width / 64, as in every open_clip ViT config."""
    width, _, patch, _ = state["conv1.weight"].shape
    grid = int(round((state["positional_embedding"].shape[0] - 1) ** 0.5))
    hidden = state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
    return VisionConfig(
        image_size=grid * patch,
        patch_size=patch,
        width=width,
        layers=_layers(state),
        heads=max(1, width // 64),
        mlp_ratio=hidden / width,
        output_dim=state["proj"].shape[1],
        act=act,
    )


def text_config(state: dict, act: str) -> TextConfig:
    vocab, width = state["token_embedding.weight"].shape
    return TextConfig(
        vocab_size=vocab,
        context_length=state["positional_embedding"].shape[0],
        width=width,
        layers=_layers(state),
        heads=max(1, width // 64),
        mlp_ratio=state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0] / width,
        output_dim=state["text_projection"].shape[1],
        act=act,
        eot_id=vocab - 1,  # open_clip BPE: <end_of_text> is the last id (49407)
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="local open_clip state-dict file")
    p.add_argument("--role", choices=("clean", "robust"), required=True)
    p.add_argument("--id", required=True, help="model id, e.g. vit-b-32-fare4")
    p.add_argument("--models-dir", required=True)
    p.add_argument("--act", choices=("gelu", "quick_gelu"), default="gelu", help="LAION: gelu; OpenAI: quick_gelu")
    p.add_argument("--source", default="", help="where the weights came from, recorded in the manifest")
    p.add_argument("--text-id", default="", help="also export the text tower under this id")
    p.add_argument("--tokenizer", default="", help="Hugging Face tokenizer.json for the text tower")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-check", action="store_true", help="skip the onnxruntime-node comparison")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    t0 = time.time()
    image_state, text_state = split_towers(load_state_dict(args.checkpoint))
    vision = VisionTransformer(vision_config(image_state, args.act))
    vision.load_state_dict(image_state, strict=True)
    log(f"loaded {len(image_state)} image-tower tensors strictly: {vision.cfg} ({time.time() - t0:.1f}s)")

    out_dir = os.path.join(args.models_dir, args.id)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.onnx")
    seconds = export_image_tower(vision, path)
    log(f"exported {path} ({os.path.getsize(path) / 1e6:.0f} MB) in {seconds:.1f}s")
    if not args.skip_check:
        size = vision.image_size
        cos = compare_with_torch(path, vision, torch.randn(2, 3, size, size), "pixel_values")
        log(f"onnxruntime-node vs PyTorch: min cosine {cos:.7f}")
    training = {"source": args.source or os.path.basename(args.checkpoint), "exportSeconds": round(seconds, 1)}
    manifest = image_manifest(args.id, args.role, vision, path, f"open_clip image tower ({args.role})", training)
    if args.text_id:
        manifest["pairsWith"] = args.text_id
    write_manifest(manifest, out_dir)

    if args.text_id:
        if not text_state or not args.tokenizer:
            raise SystemExit("--text-id needs a checkpoint with the text tower and --tokenizer")
        text = TextTransformer(text_config(text_state, args.act))
        text.load_state_dict(text_state, strict=True)
        tdir = os.path.join(args.models_dir, args.text_id)
        os.makedirs(tdir, exist_ok=True)
        tpath = os.path.join(tdir, "model.onnx")
        tok_path = os.path.join(tdir, "tokenizer.json")
        shutil.copyfile(args.tokenizer, tok_path)
        seconds = export_text_tower(text, tpath)
        log(f"exported {tpath} in {seconds:.1f}s")
        vocab = text.cfg.vocab_size
        specials = {"sot": vocab - 2, "eot": vocab - 1, "pad": 0}
        tm = text_manifest(args.text_id, text, tpath, tok_path, specials, "open_clip text tower", None,
                           {"source": args.source or os.path.basename(args.checkpoint)})
        tm["pairsWith"] = [args.id]
        write_manifest(tm, tdir)
    log(f"done in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
