"""Export the tiny pair to ``models/<id>/{model.onnx,manifest.json}`` and check each graph against PyTorch.

Writes ``defect-cnn-clean`` (role clean), ``defect-cnn-fare4`` (role robust) and ``defect-cnn-text`` (role text, with
``tokenizer.json`` and ``tokenizer_config.json``). Each exported graph is run with onnxruntime-node on random inputs
and must match PyTorch with cosine ≥ 0.99999.

    python3 export.py --clean work/clean.pt --robust work/fare4.pt --tokenizer work/tokenizer.json --models-dir ..
"""

from __future__ import annotations

import argparse
import json
import os

import torch

from lookalike_clip.model import load_checkpoint
from lookalike_clip.onnx_export import (
    compare_with_torch,
    export_image_tower,
    export_text_tower,
    image_manifest,
    text_manifest,
    write_manifest,
)
from lookalike_clip.tokenizer import WordTokenizer
from lookalike_clip.util import log

MIN_COSINE = 0.99999


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clean", required=True)
    p.add_argument("--robust", required=True)
    p.add_argument("--tokenizer", required=True, help="tokenizer.json written by train_clip.py")
    p.add_argument("--models-dir", required=True, help="the repository's models/ directory")
    p.add_argument("--clean-id", default="defect-cnn-clean")
    p.add_argument("--robust-id", default="defect-cnn-fare4")
    p.add_argument("--text-id", default="defect-cnn-text")
    p.add_argument("--skip-check", action="store_true", help="skip the onnxruntime-node comparison")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    clean, clean_blob = load_checkpoint(args.clean)
    robust, robust_blob = load_checkpoint(args.robust)
    tok = WordTokenizer.load(args.tokenizer)
    text_id = args.text_id
    size = clean.visual.image_size
    report = {}

    towers = (
        (args.clean_id, "clean", clean.visual, clean_blob.get("recipe"),
         f"In-house CNN image tower ({size} px) that sees defects: supervised contrastive (same part+defect) with "
         "label heads on the synthetic catalog, edited twins as hard negatives. Not robust."),
        (args.robust_id, "robust", robust.visual,
         {"fare": robust_blob.get("recipe"), "clean": robust_blob.get("clean_recipe")},
         f"{args.clean_id} after FARE adversarial fine-tuning (ℓ∞ ε = {robust_blob['recipe']['epsilon']}); "
         f"pairs with {text_id}."),
    )
    for model_id, role, tower, training, description in towers:
        out_dir = os.path.join(args.models_dir, model_id)
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "model.onnx")
        seconds = export_image_tower(tower, path)
        manifest = image_manifest(model_id, role, tower, path, description, training)
        manifest["pairsWith"] = text_id
        write_manifest(manifest, out_dir)
        entry = {"seconds": round(seconds, 2), "bytes": os.path.getsize(path)}
        if not args.skip_check:
            entry["minCosine"] = compare_with_torch(path, tower, torch.randn(4, 3, size, size), "pixel_values")
            if entry["minCosine"] < MIN_COSINE:
                raise SystemExit(f"{model_id}: onnxruntime output differs from PyTorch (cosine {entry['minCosine']})")
        report[model_id] = entry
        log(f"exported {model_id}: {entry}")

    out_dir = os.path.join(args.models_dir, text_id)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.onnx")
    tok_path = os.path.join(out_dir, "tokenizer.json")
    cfg_path = os.path.join(out_dir, "tokenizer_config.json")
    tok.save(tok_path, cfg_path)
    seconds = export_text_tower(clean.text, path)
    manifest = text_manifest(
        text_id,
        clean.text,
        path,
        tok_path,
        tok.special_ids(),
        "Text tower (word-level tokenizer) trained LiT-style against the locked clean CNN tower; shared by "
        f"{args.clean_id} and {args.robust_id}.",
        cfg_path,
        clean_blob.get("recipe"),
    )
    manifest["pairsWith"] = [args.clean_id, args.robust_id]
    write_manifest(manifest, out_dir)
    entry = {"seconds": round(seconds, 2), "bytes": os.path.getsize(path)}
    if not args.skip_check:
        ids = torch.tensor(tok.encode_batch(["a red steel bolt with a crack at the top left", "a nut", "a tile with no defects"]))
        entry["minCosine"] = compare_with_torch(path, clean.text, ids, "input_ids")
        if entry["minCosine"] < MIN_COSINE:
            raise SystemExit(f"{text_id}: onnxruntime output differs from PyTorch (cosine {entry['minCosine']})")
    report[text_id] = entry
    log(f"exported {text_id}: {entry}")
    with open(os.path.join(os.path.dirname(os.path.abspath(args.clean)), "export-report.json"), "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
