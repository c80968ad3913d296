"""ONNX export of CLIP towers and their manifests (the contract ``packages/encoder`` reads).

Image towers: input ``pixel_values`` float32 ``[N, 3, S, S]``, already normalised with the manifest's mean/std;
output ``embedding`` float32 ``[N, D]``, L2-normalised inside the graph. Text tower: ``input_ids`` int64 ``[N, L]``
→ ``embedding``. Opset 17, dynamic batch axis.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import tempfile
import time
from typing import Optional

import numpy as np
import onnx
import torch
from torch import nn

from .data import CLIP_MEAN, CLIP_STD
from .model import Normalized, TextTransformer, VisionTransformer
from .util import sha256_file

OPSET = 17
HERE = os.path.dirname(os.path.abspath(__file__))

# torch >= 2.9 exports through dynamo by default; the TorchScript exporter is the one torch 1.13 has, so ask for it
# explicitly where the argument exists and both versions trace the same graph.
_EXPORT_KWARGS = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}


def export_image_tower(tower: VisionTransformer, path: str) -> float:
    """Writes ``path``; returns the export wall time in seconds."""
    t0 = time.time()
    wrapped = Normalized(tower).eval().cpu()
    size = tower.image_size
    dummy = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.onnx.export(
            wrapped,
            (dummy,),
            path,
            input_names=["pixel_values"],
            output_names=["embedding"],
            dynamic_axes={"pixel_values": {0: "batch"}, "embedding": {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            **_EXPORT_KWARGS,
        )
    onnx.checker.check_model(onnx.load(path))
    return time.time() - t0


def export_text_tower(tower: TextTransformer, path: str) -> float:
    t0 = time.time()
    wrapped = Normalized(tower).eval().cpu()
    dummy = torch.zeros(2, tower.context_length, dtype=torch.long)
    dummy[:, 0], dummy[:, 1] = 2, tower.eot_id
    with torch.no_grad():
        torch.onnx.export(
            wrapped,
            (dummy,),
            path,
            input_names=["input_ids"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch"}, "embedding": {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            **_EXPORT_KWARGS,
        )
    onnx.checker.check_model(onnx.load(path))
    return time.time() - t0


def image_manifest(
    model_id: str,
    role: str,
    tower: VisionTransformer,
    model_file: str,
    description: str,
    training: Optional[dict] = None,
    mean=CLIP_MEAN,
    std=CLIP_STD,
) -> dict:
    """Manifest of an image tower; ``model_file`` must already exist (its sha256 is recorded)."""
    return {
        "schemaVersion": 1,
        "id": model_id,
        "role": role,
        "description": description,
        "files": {"model": {"path": os.path.basename(model_file), "sha256": sha256_file(model_file)}},
        "input": {
            "name": "pixel_values",
            "size": tower.image_size,
            "mean": list(mean),
            "std": list(std),
            "interpolation": "bicubic",
            "resize": "shortest",
            "crop": "center",
            "layout": "NCHW",
            "normalizedByCaller": True,
        },
        "output": {"name": "embedding", "dim": tower.output_dim, "normalized": True},
        "architecture": _architecture(tower),
        "training": training or {},
    }


def _architecture(tower: nn.Module) -> dict:
    cfg = dict(tower.cfg.__dict__)
    if cfg.get("kind") == "conv":
        cfg["widths"] = list(cfg["widths"])
        stages = "residual stages" if cfg.get("blocks") else "stride-2 conv stages"
        return {
            "family": f"CNN (conv stem, {stages}, GeM pooling, linear projection; BatchNorm folded into Conv)",
            **cfg,
        }
    return {"family": "open_clip VisionTransformer", **cfg}


def text_manifest(
    model_id: str,
    tower: TextTransformer,
    model_file: str,
    tokenizer_file: str,
    special_ids: dict,
    description: str,
    tokenizer_config_file: Optional[str] = None,
    training: Optional[dict] = None,
) -> dict:
    files = {
        "model": {"path": os.path.basename(model_file), "sha256": sha256_file(model_file)},
        "tokenizer": {"path": os.path.basename(tokenizer_file), "sha256": sha256_file(tokenizer_file)},
    }
    if tokenizer_config_file:
        files["tokenizerConfig"] = {
            "path": os.path.basename(tokenizer_config_file),
            "sha256": sha256_file(tokenizer_config_file),
        }
    return {
        "schemaVersion": 1,
        "id": model_id,
        "role": "text",
        "description": description,
        "files": files,
        "text": {
            "name": "input_ids",
            "contextLength": tower.context_length,
            "sotId": special_ids["sot"],
            "eotId": special_ids["eot"],
            "padId": special_ids["pad"],
            "unkId": special_ids.get("unk"),
            "dtype": "int64",
            "pooling": "first position of eotId",
            "framing": "[SOT] tokens[:contextLength-2] [EOT] then padId to contextLength",
        },
        "output": {"name": "embedding", "dim": tower.output_dim, "normalized": True},
        "architecture": {"family": "open_clip CLIP text tower", **tower.cfg.__dict__},
        "training": training or {},
    }


def write_manifest(manifest: dict, model_dir: str) -> str:
    path = os.path.join(model_dir, "manifest.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return path


def run_onnx_node(model_path: str, inputs: np.ndarray, input_name: str, output_name: str = "embedding") -> np.ndarray:
    """Runs an ONNX model with onnxruntime-node (the runtime the product uses) through ``run_onnx.mjs``.

    Python's onnxruntime is not installed here and onnx < 1.13 has no reference evaluator, so this is how exported
    graphs are checked against PyTorch. Raises if node or onnxruntime-node is unavailable.
    """
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.bin")
        dst = os.path.join(tmp, "out.bin")
        dtype = "int64" if inputs.dtype == np.int64 else "float32"
        inputs.astype(np.int64 if dtype == "int64" else np.float32).tofile(src)
        spec = {"model": os.path.abspath(model_path), "input": input_name, "output": output_name, "dtype": dtype,
                "shape": list(inputs.shape), "src": src, "dst": dst}
        subprocess.run(["node", os.path.join(HERE, "run_onnx.mjs"), json.dumps(spec)], check=True, cwd=HERE)
        return np.fromfile(dst, dtype=np.float32).reshape(inputs.shape[0], -1)


def compare_with_torch(model_path: str, module: nn.Module, inputs: torch.Tensor, input_name: str) -> float:
    """Worst cosine between PyTorch's (normalised) and onnxruntime-node's embeddings for ``inputs``."""
    with torch.no_grad():
        ref = torch.nn.functional.normalize(module.eval().cpu()(inputs), dim=-1).numpy()
    got = run_onnx_node(model_path, inputs.numpy(), input_name)
    got = got / np.linalg.norm(got, axis=1, keepdims=True)
    return float((ref * got).sum(axis=1).min())
