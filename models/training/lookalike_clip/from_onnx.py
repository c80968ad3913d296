"""Rebuild a trainable PyTorch ``ConvTower`` from an exported CNN image tower (``model.onnx`` + ``manifest.json``).

The export folds each BatchNorm into its convolution (``W' = W·γ/σ``, ``b' = β − μ·γ/σ``), so the folded graph has a
bias per conv where the training module has none. The rebuilt tower takes the folded weights into each ``conv`` and
sets its ``bn`` to the identity plus that bias (running mean 0, running variance 1 − eps, γ = 1, β = b'); in eval
mode it computes the exported function exactly. Used to train a stage against committed towers without their
PyTorch checkpoints (which live only in the gitignored ``work/`` folder of the run that made them): LiT text training
locks the image towers, so their BatchNorm never updates.
"""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from .model import ConvTower, clip_from_blob, image_tower, read_blob


def _module_path(conv_output: str) -> str:
    """``/tower/features/features.5/a/conv/Conv_output_0`` → ``features.5.a`` (the module that owns ``conv``)."""
    parts = conv_output.strip("/").split("/")
    if parts[0] != "tower" or parts[-2:] != ["conv", "Conv_output_0"]:
        raise ValueError(f"unexpected Conv node output {conv_output!r}: not a ConvTower export")
    scopes = parts[1:-2]
    kept = [s for i, s in enumerate(scopes) if not (i + 1 < len(scopes) and scopes[i + 1].startswith(s + "."))]
    path: list[str] = []
    for s in kept:  # a scope names its full dotted path below the previous one ("features" then "features.5")
        path = s.split(".") if path and s.startswith(".".join(path) + ".") else path + s.split(".")
    return ".".join(path)


def conv_tower_from_onnx(model_dir: str) -> tuple[ConvTower, dict]:
    """The CNN tower in ``model_dir`` as an eval-mode ``ConvTower`` and its manifest; raises if the graph is not one."""
    with open(os.path.join(model_dir, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    arch = {k: v for k, v in manifest["architecture"].items() if k != "family"}
    if arch.get("kind") != "conv":
        raise ValueError(f"{model_dir}: architecture kind {arch.get('kind')!r} is not a CNN tower")
    tower = image_tower(arch)
    assert isinstance(tower, ConvTower)
    graph = onnx.load(os.path.join(model_dir, "model.onnx")).graph
    consts = {i.name: np.array(numpy_helper.to_array(i)) for i in graph.initializer}
    modules = dict(tower.named_modules())
    convs = [n for n in graph.node if n.op_type == "Conv"]
    expected = [name for name, m in modules.items() if isinstance(m, torch.nn.Conv2d)]
    if len(convs) != len(expected):
        raise ValueError(f"{model_dir}: {len(convs)} Conv nodes in the graph, {len(expected)} convolutions in the architecture")
    seen = set()
    with torch.no_grad():
        for node in convs:
            owner_path = _module_path(node.output[0])
            owner = modules[owner_path]
            weight, bias = consts[node.input[1]], consts[node.input[2]]
            owner.conv.weight.copy_(torch.from_numpy(weight))
            bn = owner.bn
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(bias))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            seen.add(owner_path + ".conv")
        matmuls = [n for n in graph.node if n.op_type == "MatMul"]
        if len(matmuls) != 1:
            raise ValueError(f"{model_dir}: expected one MatMul (the projection), found {len(matmuls)}")
        tower.proj.weight.copy_(torch.from_numpy(consts[matmuls[0].input[1]]).t())
    if seen != set(expected):
        raise ValueError(f"{model_dir}: convolutions not restored: {sorted(set(expected) - seen)}")
    return tower.eval(), manifest


def load_image_tower(path: str) -> tuple[ConvTower, dict | None, dict | None]:
    """A CNN image tower from any of the forms the recipe writes: ``train_image.py``'s or ``train_fare.py``'s
    checkpoint (``kind`` image), a CLIP checkpoint (its ``visual``), or an exported model folder (rebuilt from its
    ONNX graph, recipes from its manifest). Returns the tower, its recipe and, for a robust tower, its clean recipe."""
    if os.path.isdir(path):
        tower, manifest = conv_tower_from_onnx(path)
        training = manifest.get("training") or {}
        if "fare" in training:
            return tower, training["fare"], training.get("clean")
        return tower, training.get("image"), None
    blob = read_blob(path)
    if blob.get("kind") == "image":
        tower = image_tower(blob["config"]["vision"])
        tower.load_state_dict(blob["state_dict"], strict=True)
    else:
        tower = clip_from_blob(blob).visual
    if not isinstance(tower, ConvTower):
        raise SystemExit(f"{path}: not a CNN image tower")
    return tower, blob.get("recipe"), blob.get("clean_recipe")

