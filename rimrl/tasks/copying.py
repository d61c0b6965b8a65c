"""The copying task (thesis section 8.4.1; Table 1 of the RIMs paper).

A sequence shows ``num_symbols`` random symbols, then a dormant gap of blanks ending with a
delimiter, then blanks during which the model must output the symbols in order. Training
uses one gap (50) and evaluation a longer one (200) too: a model that keeps its memory
untouched while nothing happens generalizes to longer gaps.

Tokens: 0 is the blank, 1..alphabet are symbols, alphabet+1 is the delimiter. Sequence
length is ``2 * num_symbols + gap``; the delimiter is the last step of the gap.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from rimrl.config import RunSettings, require_positive
from rimrl.errors import UserError
from rimrl.nn.cores import CoreConfig, build_core
from rimrl.nn.rims_settings import COPY_RIMS
from rimrl.nn.selection import activity_record


@dataclass
class CopyTaskConfig:
    """Shape of the copying sequences.

    Args:
        num_symbols: how many symbols to remember (paper: 10).
        alphabet: distinct symbols (paper: 8).
        train_gap: dormant steps during training (paper: 50).
        eval_gaps: dormant steps at evaluation (paper: 50 and 200).
    """

    num_symbols: int = 10
    alphabet: int = 8
    train_gap: int = 50
    eval_gaps: list[int] = field(default_factory=lambda: [50, 200])

    def __post_init__(self):
        require_positive({f"task.{name}": getattr(self, name)
                          for name in ("num_symbols", "alphabet", "train_gap")})
        if not self.eval_gaps or min(self.eval_gaps) < 1:
            raise UserError(f"task.eval_gaps must be positive gap lengths, got {self.eval_gaps}")


@dataclass
class CopyTrainConfig:
    """Optimisation budget and schedule.

    Args:
        updates: gradient updates (``--updates``).
        timesteps: if set, the budget in sequence steps (``--timesteps``); overrides updates.
        batch_size: sequences per update.
        learning_rate: Adam learning rate (paper: 1e-3); the older key ``lr`` is still read.
        grad_clip: global gradient-norm clip.
        eval_every: updates between evaluations.
        eval_batch: sequences per evaluation and gap.
        checkpoint_every: updates between checkpoints.
        keep_checkpoints: newest checkpoints kept.
        log_every: updates between training-loss logs.
    """

    updates: int = 300  # short, for the quick start; benchmarks/copying.py uses 3000
    timesteps: int | None = None
    batch_size: int = 64
    learning_rate: float = 1e-3
    RENAMED: ClassVar[dict[str, str]] = {"lr": "learning_rate"}
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_batch: int = 256
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    log_every: int = 25

    def __post_init__(self):
        require_positive({f"train.{name}": getattr(self, name) for name in (
            "updates", "batch_size", "eval_every", "eval_batch", "checkpoint_every",
            "keep_checkpoints", "log_every", "learning_rate")})
        if self.timesteps is not None and self.timesteps < 1:
            raise UserError(f"the budget must be positive, got timesteps={self.timesteps}")


@dataclass
class CopyConfig(RunSettings):
    """Everything ``rimrl train copy`` needs; every default is written here (the paper's
    sizes: RIMs K=6, k_A=4, hidden 600; train gap 50, evaluation gaps 50 and 200)."""

    core: CoreConfig = field(default_factory=lambda: CoreConfig(**COPY_RIMS))
    task: CopyTaskConfig = field(default_factory=CopyTaskConfig)
    train: CopyTrainConfig = field(default_factory=CopyTrainConfig)

    def total_updates(self) -> int:
        if self.train.timesteps is None:
            return self.train.updates
        steps_per_update = self.train.batch_size * sequence_length(self.task, self.task.train_gap)
        return max(1, math.ceil(self.train.timesteps / steps_per_update))


def sequence_length(task: CopyTaskConfig, gap: int) -> int:
    return 2 * task.num_symbols + gap


def make_batch(
    task: CopyTaskConfig, gap: int, batch: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token inputs and targets, each (T, B) of int64, T = 2 * num_symbols + gap."""
    S = task.num_symbols
    T = sequence_length(task, gap)
    symbols = torch.randint(1, task.alphabet + 1, (S, batch), generator=generator)
    inputs = torch.zeros(T, batch, dtype=torch.long)
    inputs[:S] = symbols
    inputs[S + gap - 1] = task.alphabet + 1  # delimiter: "start copying now"
    targets = torch.zeros(T, batch, dtype=torch.long)
    targets[S + gap:] = symbols
    return inputs, targets


class CopyModel(nn.Module):
    """One-hot tokens -> recurrent core (by name) -> per-step logits over blank + symbols."""

    def __init__(self, task: CopyTaskConfig, core: CoreConfig):
        super().__init__()
        self.vocab = task.alphabet + 2
        self.core = build_core(self.vocab, core)
        self.readout = nn.Linear(self.core.hidden_size, task.alphabet + 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = F.one_hot(tokens, self.vocab).float()
        out, _ = self.core(x)
        return self.readout(out)


def copy_losses(
    logits: torch.Tensor, targets: torch.Tensor, num_symbols: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss over all steps, CE per step on the copied part, accuracy on the copied part)."""
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    tail_logits, tail_targets = logits[-num_symbols:], targets[-num_symbols:]
    copied_ce = F.cross_entropy(tail_logits.flatten(0, 1), tail_targets.flatten())
    accuracy = (tail_logits.argmax(-1) == tail_targets).float().mean()
    return loss, copied_ce, accuracy


@torch.no_grad()
def evaluate_copy(model: CopyModel, task: CopyTaskConfig, gaps: list[int], batch: int,
                  seed: int, device: torch.device) -> dict:
    """Copied-part cross entropy (nats per step) and accuracy at each gap, on fixed data."""
    was_training = model.training
    model.eval()
    results = {}
    for gap in gaps:
        generator = torch.Generator().manual_seed(seed + 10_007 * gap)
        tokens, targets = make_batch(task, gap, batch, generator)
        logits = model(tokens.to(device))
        _, ce, acc = copy_losses(logits, targets.to(device), task.num_symbols)
        results[str(gap)] = {"ce": float(ce), "accuracy": float(acc)}
    model.train(was_training)
    return results


#: what a copy-task checkpoint holds (resuming needs every one; a checkpoint may also hold
#: "seconds", the training wall time so far, absent from those written before it was kept)
CHECKPOINT_KEYS = ("model", "optimizer", "data_rng", "torch_rng", "update")


def train_copy(config: CopyConfig, run_dir, resume_state: dict | None = None,
               progress: bool = True, stop_requested=lambda: False) -> dict:
    """Train on the copying task, checkpointing into ``run_dir``; return the final evaluation,
    or ``{"interrupted_at": update}`` when ``stop_requested()`` turned true (Ctrl-C, SIGTERM):
    the update just made is then checkpointed first.

    ``resume_state`` is a checkpoint written by an earlier call; training continues from it
    with the same data stream, so a resumed run matches an uninterrupted one. The summary's
    ``seconds`` is the wall time of training summed over every call that trained this run.
    """
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from rimrl.commits import Commit, tidy
    from rimrl.runs import (LOG_DIR, MODEL_PT, RESULTS_FILE, checkpoint_path, save_torch,
                            write_json)

    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    model = CopyModel(config.task, config.core).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.learning_rate)
    data_rng = torch.Generator().manual_seed(config.seed)
    start, earlier_seconds = 0, 0.0
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        data_rng.set_state(resume_state["data_rng"])
        torch.set_rng_state(resume_state["torch_rng"])
        start = resume_state["update"]
        earlier_seconds = float(resume_state.get("seconds", 0.0))
    clock = time.perf_counter
    began = clock()

    def checkpoint(update: int) -> None:
        """Commit the update (:mod:`rimrl.commits`): its checkpoint, then the record."""
        path = save_torch(checkpoint_path(run_dir, update), {  # CHECKPOINT_KEYS, "seconds"
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "data_rng": data_rng.get_state(), "torch_rng": torch.get_rng_state(),
            "update": update, "seconds": earlier_seconds + clock() - began,
        })
        commit = Commit(step=update, checkpoint=path.name, progress_rows=None,
                        evaluation_rows=None)
        commit.write(run_dir)
        tidy(run_dir, commit, keep=train.keep_checkpoints)

    total = config.total_updates()
    task, train = config.task, config.train
    writer = SummaryWriter(str(run_dir / LOG_DIR), purge_step=start or None)
    bar = tqdm(total=total, initial=start, disable=not progress, desc="copy", unit="upd")
    tick, tick_update = clock(), start
    for update in range(start + 1, total + 1):
        tokens, targets = make_batch(task, task.train_gap, train.batch_size, data_rng)
        logits = model(tokens.to(device))
        loss, copied_ce, accuracy = copy_losses(logits, targets.to(device), task.num_symbols)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        optimizer.step()
        bar.update(1)

        if update % train.log_every == 0 or update == total:
            now = clock()
            writer.add_scalar("train/loss", loss.item(), update)
            writer.add_scalar("train/copied_ce", copied_ce.item(), update)
            writer.add_scalar("train/copied_accuracy", accuracy.item(), update)
            writer.add_scalar("time/updates_per_second", (update - tick_update) / (now - tick),
                              update)
            tick, tick_update = now, update
            active = getattr(model.core, "last_active", None)
            if active is not None:  # (T, B, K): one sequence per batch entry
                starts = torch.zeros(active.shape[:2], dtype=torch.bool)
                starts[0] = True
                for key, value in activity_record(active.cpu().numpy(), starts.numpy()).items():
                    writer.add_scalar(f"rims/{key}", value, update)
            bar.set_postfix(ce=f"{copied_ce.item():.3f}")
        if update % train.eval_every == 0 or update == total:
            results = evaluate_copy(model, task, task.eval_gaps, train.eval_batch, config.seed,
                                    device)
            for gap, metrics in results.items():
                writer.add_scalar(f"eval/ce_gap{gap}", metrics["ce"], update)
                writer.add_scalar(f"eval/accuracy_gap{gap}", metrics["accuracy"], update)
        if update % train.checkpoint_every == 0 or update == total:
            checkpoint(update)
        elif stop_requested():
            checkpoint(update)
        if stop_requested() and update < total:
            bar.close()
            writer.close()
            return {"interrupted_at": update}
    bar.close()
    writer.close()

    results = evaluate_copy(model, task, task.eval_gaps, train.eval_batch, config.seed, device)
    summary = {"updates": total, "core": config.core.name, "gaps": results,
               "seconds": round(earlier_seconds + clock() - began, 1)}
    write_json(run_dir / RESULTS_FILE, summary)
    save_torch(run_dir / MODEL_PT, model.state_dict())
    return summary
