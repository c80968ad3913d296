"""Run an exported ONNX image tower as a differentiable PyTorch module (weights from its initialisers).

For checks against the TypeScript side (``compare_pgd.py``): the module computes exactly the ONNX graph, BatchNorm
already folded into its convolutions, so PyTorch autograd attacks the very function onnxruntime runs. Only the ops the
CNN towers export to are interpreted; any other op raises ``NotImplementedError`` naming it.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class OnnxModule(nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        model = onnx.load(path)
        self.graph = model.graph
        self.consts = {i.name: torch.from_numpy(np.array(numpy_helper.to_array(i))) for i in self.graph.initializer}
        self.input_name = self.graph.input[0].name
        self.output_name = self.graph.output[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = dict(self.consts)
        env[self.input_name] = x
        for node in self.graph.node:
            ins = [env[n] if n else None for n in node.input]
            a = _attrs(node)
            op = node.op_type
            if op == "Constant":
                out = torch.from_numpy(np.array(numpy_helper.to_array(a["value"])))
            elif op == "Conv":
                pads = a.get("pads", [0, 0, 0, 0])
                if pads[0] != pads[2] or pads[1] != pads[3]:
                    raise NotImplementedError("Conv with asymmetric pads")
                out = F.conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a.get("strides", [1, 1]), pads[:2], a.get("dilations", [1, 1]), a.get("group", 1))
            elif op == "Sigmoid":
                out = torch.sigmoid(ins[0])
            elif op == "Relu":
                out = torch.relu(ins[0])
            elif op == "Mul":
                out = ins[0] * ins[1]
            elif op == "Add":
                out = ins[0] + ins[1]
            elif op == "Div":
                out = ins[0] / ins[1]
            elif op == "Clip":
                lo = ins[1] if len(ins) > 1 else None
                hi = ins[2] if len(ins) > 2 else None
                out = torch.clamp(ins[0], min=None if lo is None else float(lo), max=None if hi is None else float(hi))
            elif op == "Pow":
                out = torch.pow(ins[0], ins[1])
            elif op == "ReduceMean":
                out = ins[0].mean(dim=tuple(a["axes"]), keepdim=bool(a.get("keepdims", 1)))
            elif op == "ReduceL2":
                out = ins[0].pow(2).sum(dim=tuple(a["axes"]), keepdim=bool(a.get("keepdims", 1))).sqrt()
            elif op == "MatMul":
                out = ins[0] @ ins[1]
            elif op == "Gemm":
                A = ins[0].t() if a.get("transA") else ins[0]
                B = ins[1].t() if a.get("transB") else ins[1]
                out = a.get("alpha", 1.0) * (A @ B) + (a.get("beta", 1.0) * ins[2] if len(ins) > 2 else 0)
            elif op == "Shape":
                out = torch.tensor(ins[0].shape, dtype=torch.int64)
            elif op == "Expand":
                out = ins[0].expand(torch.broadcast_shapes(ins[0].shape, tuple(int(v) for v in ins[1])))
            else:
                raise NotImplementedError(f"ONNX op {op} (node {node.name})")
            env[node.output[0]] = out
        return env[self.output_name]
