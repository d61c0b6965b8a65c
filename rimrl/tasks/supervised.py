"""Supervised and semi-supervised training with ERM, mixup, Manifold Mixup or ICT.

The code behind ``rimrl train supervised``: small models whose hidden layers are named (so
Manifold Mixup can mix there), the metrics (accuracy, NLL, expected calibration error, the
class-conditional singular-value spread of section 4.3.2), and one training loop in which
each method differs only in how a batch's loss is formed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar, Optional

import torch
import torch.nn.functional as F
from torch import nn

from rimrl.config import RunSettings, require_positive
from rimrl.errors import UserError
from rimrl.regularize import (EMATeacher, ManifoldMixup, ict_consistency,
                              mean_teacher_consistency, mix, mixed_cross_entropy, plan_mix,
                              sigmoid_rampup)
from rimrl.regularize.mixup import soft_cross_entropy
from rimrl.runs import LOG_DIR
from rimrl.tasks.datasets import DATASETS, Dataset, load_dataset

from rimrl.tasks.methods import METHODS, TEACHER_METHODS


@dataclass
class DataConfig:
    """``name``: two-moons | spirals | digits; ``n_train``/``n_test``/``noise``: 2-D sets;
    ``labels_per_class``: keep only that many labels per class (semi-supervised), or all."""

    name: str = "two-moons"
    n_train: int = 1000
    n_test: int = 1000
    noise: float = 0.1
    labels_per_class: Optional[int] = None

    def __post_init__(self):
        for key in ("n_train", "n_test"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 1 <= value <= MAX_EXAMPLES:
                raise UserError(f"data.{key} must be between 1 and {MAX_EXAMPLES:,} (the set "
                                f"is generated in memory), got {value!r}")
        if not 0.0 <= self.noise <= 10.0:
            raise UserError(f"data.noise must be in [0, 10], got {self.noise}")


#: the most examples a generated data set holds (data.n_train, data.n_test)
MAX_EXAMPLES = 1_000_000
#: the widest hidden layer and the most hidden layers of an MLP (model.hidden)
MAX_WIDTH, MAX_LAYERS = 4096, 16


@dataclass
class ModelConfig:
    """``kind``: mlp | cnn; ``hidden``: MLP widths (thesis two moons: three of 20);
    ``dropout`` after each hidden layer."""

    kind: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [20, 20, 20])
    dropout: float = 0.0

    def __post_init__(self):
        if not isinstance(self.hidden, list) or not 1 <= len(self.hidden) <= MAX_LAYERS \
                or any(isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_WIDTH
                       for n in self.hidden):
            raise UserError(f"model.hidden must list 1 to {MAX_LAYERS} layer widths between 1 "
                            f"and {MAX_WIDTH}, e.g. [20, 20, 20]; got {self.hidden!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"model.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class MethodConfig:
    """``name``: erm | mixup | manifold-mixup | ict | mean-teacher. ``alpha``:
    Beta(alpha, alpha) of lam. ICT and mean teacher: ``ema_decay`` of the teacher and
    ``ema_warmup`` (its running-mean start, as in the official code), ``consistency_weight``
    (its maximum), ``rampup_fraction`` of training over which it ramps up,
    ``consistency_loss`` mse | kl. ICT only: ``supervised_mixup``, mixup on the labelled
    batch too (thesis 6.3.3 uses it in every ICT run; on by default). Mean teacher only:
    ``noise_std``, the Gaussian input noise of student and teacher. ``layers``: Manifold
    Mixup's eligible layers by name (``input`` is layer 0); default the input and every
    hidden layer (the thesis' 4.3.2 analysis mixes at one fixed layer: ``[hidden1]``)."""

    name: str = "erm"
    layers: Optional[list[str]] = None
    alpha: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = True
    consistency_weight: float = 10.0
    rampup_fraction: float = 0.25
    consistency_loss: str = "mse"
    supervised_mixup: bool = True
    noise_std: float = 0.1


@dataclass
class OptimConfig:
    """Adam with ``learning_rate`` (the older key ``lr`` is still read) and ``weight_decay`` for ``updates`` steps of ``batch_size`` labelled
    (and ``unlabeled_batch_size`` unlabelled, ICT) examples."""

    updates: int = 2000
    batch_size: int = 64
    unlabeled_batch_size: int = 128
    learning_rate: float = 0.003
    RENAMED: ClassVar[dict[str, str]] = {"lr": "learning_rate"}
    weight_decay: float = 0.0
    eval_every: int = 250


@dataclass
class SupervisedConfig(RunSettings):
    """Everything ``rimrl train supervised`` needs; every default is written here,
    ``configs/supervised.yaml`` holds what each data set changes."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self):
        super().__post_init__()
        from rimrl.errors import unknown_name
        if self.method.name not in METHODS:
            raise UserError(unknown_name("method", self.method.name, METHODS))
        if self.data.name not in DATASETS:
            raise UserError(unknown_name("dataset", self.data.name, DATASETS))
        if self.model.kind not in ("mlp", "cnn"):
            raise UserError(unknown_name("model kind", self.model.kind, ("mlp", "cnn")))
        require_positive({"method.alpha": self.method.alpha})
        if not 0 <= self.method.ema_decay < 1:
            raise UserError(f"method.ema_decay must be in [0, 1), got {self.method.ema_decay}")
        if self.method.noise_std < 0:
            raise UserError(f"method.noise_std must be >= 0, got {self.method.noise_std}")
        require_positive({f"train.{key}": getattr(self.train, key) for key in (
            "updates", "batch_size", "unlabeled_batch_size", "eval_every", "learning_rate")})


    def validate(self) -> None:
        """Checks that need the data (enough examples per class for the labels asked) and
        the model (Manifold Mixup's layer names), made before a run directory exists."""
        try:
            data = load_dataset(self.data.name, self.seed, self.data.n_train, self.data.n_test,
                                self.data.noise, self.data.labels_per_class)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if self.model.kind == "cnn" and self.data.name != "digits":
            raise UserError("model.kind cnn needs image data (dataset digits); use mlp")
        mixing_layers(self, build_model(self.model, data)[1])


def mixing_layers(cfg: "SupervisedConfig", eligible: list[str]) -> list[str]:
    """Manifold Mixup's layers (``method.layers``, default: the input and every eligible
    hidden layer); a one-line error for a name the model does not have."""
    layers = cfg.method.layers if cfg.method.layers is not None else ["input"] + eligible
    unknown = sorted(set(layers) - set(eligible) - {"input"})
    if unknown or not layers:
        raise UserError(f"method.layers {unknown or layers} not eligible; choose from "
                        f"{['input'] + eligible}")
    return layers


# ------------------------------------------------------------------------------------ models
def build_model(cfg: ModelConfig, data: Dataset) -> tuple[nn.Module, list[str]]:
    """The model and the names of its hidden layers eligible for Manifold Mixup."""
    if cfg.kind == "cnn":
        if data.image_shape is None:
            raise UserError("model.kind cnn needs image data (dataset digits); use mlp")
        c, h, w = data.image_shape
        model = nn.Sequential()
        model.add_module("unflatten", nn.Unflatten(1, (c, h, w)))
        model.add_module("block1", nn.Sequential(nn.Conv2d(c, 16, 3, padding=1), nn.ReLU()))
        model.add_module("block2", nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                                                 nn.MaxPool2d(2), nn.Flatten()))
        model.add_module("block3", nn.Sequential(nn.Linear(32 * (h // 2) * (w // 2), 64),
                                                 nn.ReLU(), nn.Dropout(cfg.dropout)))
        model.add_module("out", nn.Linear(64, data.num_classes))
        return model, ["block1", "block2", "block3"]
    layers, names, width = nn.Sequential(), [], data.x_train.shape[1]
    for i, size in enumerate(cfg.hidden, start=1):
        layers.add_module(f"hidden{i}", nn.Sequential(nn.Linear(width, size), nn.ReLU(),
                                                      nn.Dropout(cfg.dropout)))
        names.append(f"hidden{i}")
        width = size
    layers.add_module("out", nn.Linear(width, data.num_classes))
    return layers, names


# ----------------------------------------------------------------------------------- metrics
def expected_calibration_error(probs: torch.Tensor, y: torch.Tensor, bins: int = 15) -> float:
    """ECE: bin by confidence, average |accuracy - confidence| weighted by bin size."""
    confidence, predicted = probs.max(-1)
    correct = (predicted == y).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            ece += in_bin.float().mean().item() * abs(
                correct[in_bin].mean().item() - confidence[in_bin].mean().item())
    return ece


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Accuracy, negative log-likelihood (nats) and ECE on (x, y)."""
    was_training = model.training
    model.eval()
    logits = model(x)
    model.train(was_training)
    probs = F.softmax(logits, -1)
    return {"accuracy": (logits.argmax(-1) == y).float().mean().item(),
            "nll": F.cross_entropy(logits, y).item(),
            "ece": expected_calibration_error(probs, y)}


@torch.no_grad()
def hidden_features(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    """Outputs of the named layer for inputs x (model in eval mode)."""
    store = {}
    handle = dict(model.named_modules())[layer].register_forward_hook(
        lambda _m, _i, out: store.setdefault("h", out))
    was_training = model.training
    model.eval()
    model(x)
    model.train(was_training)
    handle.remove()
    return store["h"].flatten(1)


#: what :func:`spectrum_measures` reports; all but ``raw`` are scale-free
SPECTRUM_MEASURES = ("raw", "relative", "k90", "relative_centred", "k90_centred")


def spectrum_measures(features: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """How flat each class's representations are (thesis 4.3.2: Manifold Mixup flattens
    class representations), averaged over classes. Per class, of the singular values ``s``
    of its matrix of representations (rows: examples):

    - ``raw``: ``sum(s[1:])``, the thesis' measure; it grows with the activations' scale;
    - ``relative``: ``sum(s[1:]) / s[0]``, the same relative to the leading value;
    - ``k90``: how many values hold 90% of the energy ``sum(s**2)``;
    - ``relative_centred``, ``k90_centred``: the same after subtracting the class mean
      (without centring, the leading value mostly measures the mean's length).
    """
    per_class: dict[str, list[float]] = {k: [] for k in SPECTRUM_MEASURES}
    for c in y.unique():
        rows = features[y == c].double()
        for suffix, matrix in (("", rows), ("_centred", rows - rows.mean(0, keepdim=True))):
            s = torch.linalg.svdvals(matrix)
            energy = torch.cumsum(s ** 2, 0) / (s ** 2).sum().clamp_min(1e-300)
            k90 = int((energy < 0.9 - 1e-12).sum().item()) + 1
            if not suffix:
                per_class["raw"].append(s[1:].sum().item())
            per_class["relative" + suffix].append((s[1:].sum() / s[0].clamp_min(1e-300)).item())
            per_class["k90" + suffix].append(float(k90))
    return {k: sum(v) / len(v) for k, v in per_class.items()}


# ------------------------------------------------------------------------------ training loop
def batch_loss(cfg: SupervisedConfig, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               num_classes: int, mixer: Optional[ManifoldMixup], generator) -> torch.Tensor:
    """The labelled part of the loss for one batch, by method."""
    method = cfg.method
    if method.name == "mixup" or (method.name == "ict" and method.supervised_mixup):
        plan = plan_mix(len(x), method.alpha, generator)
        return mixed_cross_entropy(model(mix(x, plan)), y, plan)
    if method.name == "manifold-mixup":
        logits, targets = mixer(x, y, num_classes)
        return soft_cross_entropy(logits, targets)
    return F.cross_entropy(model(x), y)


def train_supervised(cfg: SupervisedConfig, run_dir=None) -> dict:
    """Train per ``cfg``; with a run directory, log to ``run_dir/tb``. Returns the final
    metrics, the trained model, the data and the eligible layers (``rimrl train supervised``
    saves ``model.pt``, ``results.json`` and the figure)."""
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    try:
        data = load_dataset(cfg.data.name, cfg.seed, cfg.data.n_train, cfg.data.n_test,
                            cfg.data.noise, cfg.data.labels_per_class)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    model, eligible = build_model(cfg.model, data)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.learning_rate,
                                 weight_decay=cfg.train.weight_decay)
    layers = mixing_layers(cfg, eligible)
    mixer = ManifoldMixup(model, [n for n in layers if n != "input"], cfg.method.alpha,
                          include_input="input" in layers, generator=generator)
    teacher = (EMATeacher(model, cfg.method.ema_decay, cfg.method.ema_warmup)
               if cfg.method.name in TEACHER_METHODS else None)
    rampup_steps = cfg.method.rampup_fraction * cfg.train.updates
    x_lab, y_lab = data.x_train[data.labeled], data.y_train[data.labeled]
    writer = None
    if run_dir is not None:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(run_dir / LOG_DIR))
    start = time.perf_counter()
    for step in range(1, cfg.train.updates + 1):
        idx = torch.randint(len(x_lab), (min(cfg.train.batch_size, len(x_lab)),),
                            generator=generator)
        loss = batch_loss(cfg, model, x_lab[idx], y_lab[idx], data.num_classes, mixer,
                          generator)
        consistency = None
        if teacher is not None:
            u_idx = torch.randint(len(data.x_train), (cfg.train.unlabeled_batch_size,),
                                  generator=generator)
            unlabeled = data.x_train[u_idx]
            if cfg.method.name == "ict":
                consistency = ict_consistency(model, teacher, unlabeled, cfg.method.alpha,
                                              generator, cfg.method.consistency_loss)
            else:
                consistency = mean_teacher_consistency(model, teacher, unlabeled,
                                                       cfg.method.noise_std, generator,
                                                       cfg.method.consistency_loss)
            weight = cfg.method.consistency_weight * sigmoid_rampup(step, rampup_steps)
            loss = loss + weight * consistency
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if teacher is not None:
            teacher.update(model)
        if writer is not None and (step % cfg.train.eval_every == 0 or step == cfg.train.updates):
            writer.add_scalar("train/loss", loss.item(), step)
            if consistency is not None:
                writer.add_scalar("train/consistency", consistency.item(), step)
            for key, value in evaluate(model, data.x_test, data.y_test).items():
                writer.add_scalar(f"test/{key}", value, step)
    metrics = evaluate(model, data.x_test, data.y_test)
    result = {"method": cfg.method.name, "dataset": cfg.data.name, "updates": cfg.train.updates,
              "labeled": int(len(data.labeled)), "seconds": round(time.perf_counter() - start, 2),
              "test": metrics}
    if teacher is not None:
        result["test_teacher"] = evaluate(teacher.model, data.x_test, data.y_test)
    if writer is not None:
        writer.close()
    return {"result": result, "model": model, "data": data, "eligible": eligible}


def plot_decision_boundary(model: nn.Module, data: Dataset, path, title: str = "") -> None:
    """PNG of the predicted class probability over the plane, with the training points
    (labelled ones large and outlined)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = torch.cat([data.x_train, data.x_test])
    lo, hi = x.min(0).values - 0.5, x.max(0).values + 0.5
    gx, gy = torch.meshgrid(torch.linspace(lo[0], hi[0], 200),
                            torch.linspace(lo[1], hi[1], 200), indexing="xy")
    with torch.no_grad():
        model.eval()
        probs = F.softmax(model(torch.stack([gx.flatten(), gy.flatten()], 1)), -1)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.contourf(gx, gy, probs[:, 1].reshape(gx.shape), levels=20, cmap="RdBu_r", alpha=0.6)
    ax.scatter(data.x_train[:, 0], data.x_train[:, 1], c=data.y_train, cmap="RdBu_r", s=4)
    lab = data.labeled
    ax.scatter(data.x_train[lab, 0], data.x_train[lab, 1], c=data.y_train[lab], cmap="RdBu_r",
               s=80, edgecolors="black", linewidths=1.5)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
