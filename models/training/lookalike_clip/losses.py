"""Losses and attacks: symmetric hard-negative CLIP loss, FARE's embedding loss, PGD (FARE's and evaluation's)."""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F


def hard_negative_clip_loss(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    logit_scale: torch.Tensor,
    exclude: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Symmetric InfoNCE over ``M = 2B`` rows laid out ``[originals; twins]`` for images and captions alike.

    Every image competes against all ``M`` captions and every caption against all ``M`` images, so an image's twin
    caption (and a caption's twin image) is in both softmax denominators: CLIP-IN's symmetric hard-negative loss.
    ``exclude`` (``[M, M]`` bool) marks off-diagonal pairs that are not true negatives (identical captions); they
    are left out of both directions.

    image_emb, text_emb: ``[M, D]`` L2-normalised.
    """
    logits = logit_scale.exp() * image_emb @ text_emb.t()  # [M, M]
    if exclude is not None:
        logits = logits.masked_fill(exclude, float("-inf"))
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def fare_loss(adv_emb: torch.Tensor, clean_emb: torch.Tensor) -> torch.Tensor:
    """FARE: squared ℓ2 distance of unnormalised embeddings, summed over dims, mean over the batch."""
    return (adv_emb - clean_emb).pow(2).sum(dim=1).mean()


def pgd_fare(
    embed: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    target: torch.Tensor,
    eps: float,
    steps: int,
    step_size: float,
    momentum: float = 0.9,
) -> torch.Tensor:
    """FARE's inner maximisation (RobustVLM ``train/pgd_train.py``): ℓ∞ PGD on :func:`fare_loss` from a uniform
    random start; each step normalises the gradient for ℓ∞ (its sign), accumulates it with momentum, normalises
    the velocity again and steps along it, then projects to the ε-ball and to [0, 1].

    embed: [0, 1] pixels → unnormalised embedding (normalisation inside). x: ``[N, 3, H, W]`` in [0, 1].
    Returns the adversarial image (detached).
    """
    delta = torch.empty_like(x).uniform_(-eps, eps)
    delta = (x + delta).clamp_(0, 1) - x
    velocity = torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = fare_loss(embed(x + delta), target)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            velocity = (momentum * velocity + grad.sign()).sign()
            delta = (delta + step_size * velocity).clamp_(-eps, eps)
            delta = (x + delta).clamp_(0, 1) - x
    return (x + delta).detach()


def pgd_cosine(
    embed: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    eps: float,
    steps: int = 20,
    step_size: Optional[float] = None,
) -> torch.Tensor:
    """Untargeted ℓ∞ PGD for retrieval: maximise ``1 − cos(φ(x+δ), φ(x))`` from a random start; keeps the best
    iterate per image. ``step_size`` defaults to ``2.5·ε/steps`` (Madry et al.). x in [0, 1]; returns x+δ."""
    if step_size is None:
        step_size = 2.5 * eps / steps
    with torch.no_grad():
        ref = F.normalize(embed(x), dim=-1)
    delta = torch.empty_like(x).uniform_(-eps, eps)
    delta = (x + delta).clamp_(0, 1) - x
    best = x.clone()
    best_loss = torch.full((x.shape[0],), -1.0, device=x.device)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = 1 - (F.normalize(embed(x + delta), dim=-1) * ref).sum(dim=-1)  # [N]
        (grad,) = torch.autograd.grad(loss.sum(), delta)
        with torch.no_grad():
            better = loss.detach() > best_loss
            best[better] = (x + delta)[better].detach()
            best_loss = torch.where(better, loss.detach(), best_loss)
            delta = (delta + step_size * grad.sign()).clamp_(-eps, eps)
            delta = (x + delta).clamp_(0, 1) - x
    with torch.no_grad():
        loss = 1 - (F.normalize(embed(x + delta), dim=-1) * ref).sum(dim=-1)
        better = loss > best_loss
        best[better] = (x + delta)[better]
    return best.detach()


def supcon_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, the ``L_out`` form): for each anchor with at least one
    positive (another row of the same label), the mean over its positives of ``-log softmax`` over all other rows.

    z: ``[M, D]`` L2-normalised; labels: ``[M]`` int.
    """
    m = z.shape[0]
    logits = z @ z.t() / temperature
    self_mask = torch.eye(m, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (labels[:, None] == labels[None, :]) & ~self_mask
    count = pos.sum(1)
    has = count > 0
    per_anchor = -(log_prob.masked_fill(~pos, 0).sum(1)[has] / count[has])
    return per_anchor.mean()
