"""Small shared helpers: device choice, seeding, schedules, logging."""

from __future__ import annotations

import hashlib
import math
import random
import time

import numpy as np
import torch


def pick_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cpu`` / ``cuda`` / ``cuda:N`` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def setup_torch(threads: int, seed: int) -> None:
    """Thread count for CPU runs and every RNG seeded."""
    if threads > 0:
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def fit_to_budget(step: int, total: int, warmup: int, elapsed: float, budget: float) -> tuple[int, int]:
    """Shrinks a schedule of ``total`` steps so it ends within ``budget`` seconds, judging by the first ``step``
    steps' ``elapsed`` time, so a slow (shared) machine still gets a fully annealed model. Returns (total, warmup)."""
    per_step = elapsed / max(1, step)
    fits = int(0.97 * budget / per_step)
    if fits >= total:
        log(f"schedule of {total} steps fits the budget ({per_step:.2f}s/step)")
        return total, warmup
    new_warmup = min(warmup, max(1, fits // 20))
    log(f"{per_step:.2f}s/step: shrinking the schedule from {total} to {fits} steps to fit {budget / 60:.1f} min")
    return max(step + 1, fits), new_warmup


class TimedSchedule:
    """A warm-up + cosine schedule of ``total`` steps held to a time budget of ``max_minutes`` (0 = none) counted from
    ``t_start``: after the 20th step it shrinks to fit the budget by :func:`fit_to_budget`, and :meth:`spent` says when
    the budget (with 5 % grace) is over. The one step-budget logic of every training script."""

    def __init__(self, total: int, warmup: int, max_minutes: float, t_start: float) -> None:
        self.total, self.warmup, self.max_minutes, self.t_start = total, warmup, max_minutes, t_start
        self.t_loop = time.time()

    def lr_factor(self, step: int) -> float:
        return warmup_cosine(step, self.total, self.warmup)

    def fit(self, step: int) -> None:
        """Call after each step: at step 20, fits the schedule to what is left of the budget."""
        if step == 20 and self.max_minutes:
            budget = 60 * self.max_minutes - (self.t_loop - self.t_start)
            self.total, self.warmup = fit_to_budget(step, self.total, self.warmup, time.time() - self.t_loop, budget)

    def spent(self, step: int) -> bool:
        """True (and says so) once the time budget is over: the caller stops training."""
        if self.max_minutes and time.time() - self.t_start > 60 * self.max_minutes * 1.05:
            log(f"stopping at step {step}/{self.total}: --max-minutes {self.max_minutes} reached")
            return True
        return False


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_T0 = time.time()


def log(msg: str) -> None:
    """One timestamped line on stdout, flushed (training runs under nohup with a log file)."""
    print(f"[{time.time() - _T0:7.1f}s] {msg}", flush=True)
