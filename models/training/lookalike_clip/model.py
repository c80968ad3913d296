"""CLIP towers whose module tree and state-dict names mirror open_clip's.

The image tower is open_clip's ``VisionTransformer`` (class-token pooling, ``ln_post`` then ``proj``) and the text
tower is the text half of open_clip's ``CLIP`` (causal transformer, ``ln_final``, end-of-text pooling,
``text_projection``), so an open_clip ViT-B/32 state dict loads with ``strict=True`` after stripping ``visual.``.

Attention runs sequence-first (``nn.MultiheadAttention(batch_first=False)``) as open_clip did up to v2.20: it never
takes PyTorch's fused inference fast path, so training, PGD and ONNX export trace the same graph on torch 1.13 and
on current releases.
"""

from __future__ import annotations

import inspect
import math
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class QuickGELU(nn.Module):
    """OpenAI CLIP's sigmoid approximation of GELU (``x * sigmoid(1.702 x)``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def _activation(name: str) -> nn.Module:
    if name == "gelu":
        return nn.GELU()
    if name == "quick_gelu":
        return QuickGELU()
    raise ValueError(f"unknown activation {name!r}; use 'gelu' or 'quick_gelu'")


class ResidualAttentionBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``; input ``[L, N, D]``."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, act: str = "gelu") -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict([("c_fc", nn.Linear(width, hidden)), ("gelu", _activation(act)), ("c_proj", nn.Linear(hidden, width))])
        )

    def forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """A stack of ``ResidualAttentionBlock`` under ``resblocks.N`` (open_clip's naming)."""

    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float = 4.0, act: str = "gelu") -> None:
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, mlp_ratio, act) for _ in range(layers)])

    def forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, attn_mask=attn_mask)
        return x


@dataclass(frozen=True)
class VisionConfig:
    """Shape of the image tower. Defaults are the tiny in-house tower; ``VIT_B_32`` is open_clip's ViT-B/32."""

    image_size: int = 96
    patch_size: int = 12
    width: int = 128
    layers: int = 5
    heads: int = 4
    mlp_ratio: float = 4.0
    output_dim: int = 128
    act: str = "gelu"


@dataclass(frozen=True)
class TextConfig:
    """Shape of the text tower."""

    vocab_size: int = 128
    context_length: int = 32
    width: int = 128
    layers: int = 3
    heads: int = 4
    mlp_ratio: float = 4.0
    output_dim: int = 128
    act: str = "gelu"
    eot_id: int = 3


VIT_B_32 = VisionConfig(image_size=224, patch_size=32, width=768, layers=12, heads=12, output_dim=512, act="gelu")
"""open_clip ``ViT-B-32`` image tower (LAION checkpoints use GELU; OpenAI's use QuickGELU)."""


class VisionTransformer(nn.Module):
    """open_clip's ``VisionTransformer``: normalised ``[N, 3, S, S]`` → unnormalised ``[N, output_dim]``."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        if cfg.image_size % cfg.patch_size:
            raise ValueError(f"image size {cfg.image_size} is not a multiple of patch size {cfg.patch_size}")
        self.cfg = cfg
        self.image_size = cfg.image_size
        self.output_dim = cfg.output_dim
        grid = cfg.image_size // cfg.patch_size
        scale = cfg.width**-0.5
        self.conv1 = nn.Conv2d(3, cfg.width, kernel_size=cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(cfg.width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, cfg.width))
        self.ln_pre = nn.LayerNorm(cfg.width)
        self.transformer = Transformer(cfg.width, cfg.layers, cfg.heads, cfg.mlp_ratio, cfg.act)
        self.ln_post = nn.LayerNorm(cfg.width)
        self.proj = nn.Parameter(scale * torch.randn(cfg.width, cfg.output_dim))
        _init_transformer(self.transformer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)  # [N, W, g, g]
        x = x.flatten(2).permute(0, 2, 1)  # [N, g*g, W]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)  # [N, 1+g*g, W]
        x = self.ln_pre(x)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)  # sequence-first inside
        return self.ln_post(x[:, 0]) @ self.proj



@dataclass(frozen=True)
class ConvConfig:
    """Shape of the convolutional image tower (``kind = "conv"``): a ResNet-style CNN for small data.

    A stem of two 3×3 convolutions (the first of stride 2), then one stage per entry of ``widths``, each a stride-2
    3×3 convolution followed by ``blocks`` residual blocks (3×3 → 3×3, identity skip), every convolution followed by
    BatchNorm and the activation; generalised-mean (GeM, ``p = gem_p``) pooling over locations, so one small
    defect weighs more than under average pooling; a linear projection to ``output_dim``. BatchNorm is folded into
    the convolutions at ONNX export, so the exported graph holds Conv, Relu/Sigmoid·Mul, Add, Clip, Pow, ReduceMean
    and MatMul only — ops ``packages/autodiff`` differentiates.
    """

    kind: str = "conv"
    image_size: int = 128
    stem_width: int = 32
    widths: tuple = (48, 96, 160, 256)
    blocks: int = 1
    output_dim: int = 128
    act: str = "silu"
    gem_p: float = 3.0


def _conv_act(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "silu":
        return nn.SiLU()
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"unknown activation {name!r}; use 'relu', 'silu' or 'gelu'")


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict([("conv", nn.Conv2d(cin, cout, 3, stride, 1, bias=False)), ("bn", nn.BatchNorm2d(cout))])
    )


class ResidualConvBlock(nn.Module):
    """``act(x + bn(conv(act(bn(conv(x))))))``; the second BatchNorm starts at zero scale (an identity block)."""

    def __init__(self, width: int, act: str) -> None:
        super().__init__()
        self.a = _conv_bn(width, width)
        self.b = _conv_bn(width, width)
        self.act = _conv_act(act)
        nn.init.zeros_(self.b.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.b(self.act(self.a(x))))


class ConvTower(nn.Module):
    """Normalised ``[N, 3, S, S]`` → unnormalised ``[N, output_dim]``; see :class:`ConvConfig`."""

    def __init__(self, cfg: ConvConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.image_size = cfg.image_size
        self.output_dim = cfg.output_dim
        layers: list[nn.Module] = [_conv_bn(3, cfg.stem_width, 2), _conv_act(cfg.act), _conv_bn(cfg.stem_width, cfg.stem_width), _conv_act(cfg.act)]
        cin = cfg.stem_width
        for w in cfg.widths:
            layers += [_conv_bn(cin, w, 2), _conv_act(cfg.act)]
            layers += [ResidualConvBlock(w, cfg.act) for _ in range(cfg.blocks)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.width = cin
        self.proj = nn.Linear(cin, cfg.output_dim, bias=False)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """GeM pooling ``[N, C, h, w]`` → ``[N, C]``."""
        p = self.cfg.gem_p
        return x.clamp(min=1e-6).pow(p).mean(dim=(2, 3)).pow(1.0 / p)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features before the projection, ``[N, width]`` (what auxiliary heads read in training)."""
        return self.pool(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.forward_features(x))


def image_tower(cfg: dict) -> nn.Module:
    """The image tower a config dict describes: ``kind = "conv"`` → :class:`ConvTower`, else the ViT."""
    if cfg.get("kind") == "conv":
        c = dict(cfg)
        c["widths"] = tuple(c["widths"])
        return ConvTower(ConvConfig(**c))
    return VisionTransformer(VisionConfig(**{k: v for k, v in cfg.items() if k != "kind"}))


class TextTransformer(nn.Module):
    """The text half of open_clip's ``CLIP``: int64 ids ``[N, L]`` → unnormalised ``[N, output_dim]``.

    Pools the position of the first ``eot_id`` token (argmax of an equality mask), so the end-of-text id need not be
    the largest id in the vocabulary; for open_clip's BPE, where it is, this picks the same position as its
    ``argmax(ids)``.
    """

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.context_length = cfg.context_length
        self.eot_id = cfg.eot_id
        self.output_dim = cfg.output_dim
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.width))
        self.transformer = Transformer(cfg.width, cfg.layers, cfg.heads, cfg.mlp_ratio, cfg.act)
        self.ln_final = nn.LayerNorm(cfg.width)
        self.text_projection = nn.Parameter(torch.empty(cfg.width, cfg.output_dim))
        # Additive causal mask; not persistent, as in open_clip, so checkpoints carry weights only.
        mask = torch.full((cfg.context_length, cfg.context_length), float("-inf")).triu_(1)
        self.register_buffer("attn_mask", mask, persistent=False)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=cfg.width**-0.5)
        _init_transformer(self.transformer)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(ids) + self.positional_embedding  # [N, L, W]
        x = self.transformer(x.permute(1, 0, 2), attn_mask=self.attn_mask).permute(1, 0, 2)
        x = self.ln_final(x)
        eot = (ids == self.eot_id).to(torch.float32).argmax(dim=-1)  # first EOT per row
        return x[torch.arange(x.shape[0], device=x.device), eot] @ self.text_projection


def _init_transformer(t: Transformer) -> None:
    """open_clip's ``init_parameters`` scheme for residual blocks."""
    proj_std = (t.width**-0.5) * ((2 * t.layers) ** -0.5)
    attn_std = t.width**-0.5
    fc_std = (2 * t.width) ** -0.5
    for block in t.resblocks:
        nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
        nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
        nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
        nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)


class CLIP(nn.Module):
    """Image tower under ``visual.``, text tower at the top level, and ``logit_scale`` (open_clip's layout)."""

    def __init__(self, vision: "VisionConfig | ConvConfig", text: TextConfig) -> None:
        super().__init__()
        if vision.output_dim != text.output_dim:
            raise ValueError(f"tower output dims differ: image {vision.output_dim}, text {text.output_dim}")
        self.visual = ConvTower(vision) if isinstance(vision, ConvConfig) else VisionTransformer(vision)
        self.text = TextTransformer(text)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, pixels: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        z = self.visual(pixels)
        return F.normalize(z, dim=-1) if normalize else z

    def encode_text(self, ids: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        z = self.text(ids)
        return F.normalize(z, dim=-1) if normalize else z

    def config(self) -> dict:
        return {"vision": asdict(self.visual.cfg), "text": asdict(self.text.cfg)}

    @staticmethod
    def from_config(cfg: dict) -> "CLIP":
        v = dict(cfg["vision"])
        if v.get("kind") == "conv":
            v["widths"] = tuple(v["widths"])
            return CLIP(ConvConfig(**v), TextConfig(**cfg["text"]))
        return CLIP(VisionConfig(**v), TextConfig(**cfg["text"]))


class Normalized(nn.Module):
    """Wraps a tower so its output is L2-normalised inside the exported graph."""

    def __init__(self, tower: nn.Module) -> None:
        super().__init__()
        self.tower = tower

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.tower(x), dim=-1)


def save_checkpoint(path: str, model: CLIP, extra: Optional[dict] = None) -> None:
    torch.save({"config": model.config(), "state_dict": model.state_dict(), **(extra or {})}, path)


def save_image_tower(path: str, tower: ConvTower, extra: dict) -> None:
    """Writes an image tower alone (``kind`` image, vision config, state dict) plus ``extra`` (its recipe and, for a
    robust tower, ``clean_recipe``): what ``train_image.py`` and ``train_fare.py`` write."""
    cfg = tower.cfg
    torch.save({"kind": "image", "config": {"vision": {**cfg.__dict__, "widths": list(cfg.widths)}}, "state_dict": tower.state_dict(), **extra}, path)


def read_blob(path: str, map_location: str = "cpu") -> dict:
    """A checkpoint file as saved. Our own checkpoints hold a config dict and run metadata besides tensors; torch >= 2.6
    defaults to weights_only=True, which refuses some of those, so ask for the full load where the argument exists."""
    kwargs = {"weights_only": False} if "weights_only" in inspect.signature(torch.load).parameters else {}
    return torch.load(path, map_location=map_location, **kwargs)


def clip_from_blob(blob: dict) -> CLIP:
    model = CLIP.from_config(blob["config"])
    model.load_state_dict(blob["state_dict"], strict=True)
    return model


def load_checkpoint(path: str, map_location: str = "cpu") -> tuple[CLIP, dict]:
    blob = read_blob(path, map_location)
    return clip_from_blob(blob), blob
