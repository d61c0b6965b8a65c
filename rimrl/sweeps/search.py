"""Hyperparameter search (the ``search:`` section of a sweep file; the Ray side is in
:mod:`rimrl.sweeps.tuning`).

A sweep file with ``search:`` instead of ``grid:`` samples its trials from a search space
and stops the weak ones early, as RL Zoo's ``--optimize`` does::

    command: ppo
    name: pickup-rims-search
    overrides: {env.id: rimrl/Pickup-v1, core.name: rims, train.timesteps: 300000,
                eval.every: 50000, eval.episodes: 50, eval.distractors: [novel]}
    search:
      space:
        core.k_active: {int: [2, 5]}
        core.num_units: {choice: [4, 6, 8]}
        ppo.learning_rate: {loguniform: [1.0e-4, 1.0e-3]}
      split: train             # the metric: the periodic evaluation of this split ...
      measure: success_rate    # ... its success rate (or return_mean), maximised
      trials: 12

Each trial is an ordinary run directory, ``RUNS_DIR/NAME/trial-NNNNN``, trained to
``train.timesteps`` (the budget of every trial) unless the scheduler stops it; its
evaluations during training (``eval.every``) are the metric the search algorithm and the
scheduler see. The samplers are Optuna's TPE (Akiba et al., 2019; Bergstra et al., 2011)
through Ray Tune, or uniform random sampling, the fallback when Optuna is not installed;
the scheduler is ASHA (Li et al., 2020, asynchronous successive halving), which stops a trial
whose metric at a rung (``grace_steps`` x ``reduction_factor``^k steps) is below the top
1/``reduction_factor`` of the trials that reached that rung, or none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from rimrl.errors import UserError
from rimrl.runs import SEARCH_RECORD

#: the kinds of a search dimension and what each samples
KINDS = {"uniform": "a float in [low, high]", "loguniform": "a float in [low, high], "
         "uniform in its logarithm", "int": "an integer in [low, high], both included",
         "choice": "one of the listed values"}
ALGORITHMS = ("optuna", "random")
SCHEDULERS = ("asha", "none")
MEASURES = ("success_rate", "return_mean")


@dataclass(frozen=True)
class Dimension:
    """One key of the search space: ``kind`` (see :data:`KINDS`) and its ``values``
    (``[low, high]`` for ranges, the options for ``choice``)."""

    key: str
    kind: str
    values: tuple

    @classmethod
    def parse(cls, key: str, spec: Any) -> "Dimension":
        """``{loguniform: [1e-4, 1e-3]}`` -> a checked dimension; a one-line error else."""
        example = f"e.g. {key}: {{loguniform: [1.0e-4, 1.0e-3]}} or {{choice: [4, 6, 8]}}"
        if not isinstance(spec, dict) or len(spec) != 1:
            raise UserError(f"search.space.{key} must be one of {', '.join(KINDS)} with its "
                            f"values, {example}")
        kind, values = next(iter(spec.items()))
        if kind not in KINDS:
            raise UserError(f"search.space.{key}: unknown kind '{kind}'; use one of "
                            f"{', '.join(KINDS)}, {example}")
        if not isinstance(values, list) or not values:
            raise UserError(f"search.space.{key}: {kind} takes a list, {example}")
        if kind == "choice":
            if any(values.count(v) > 1 for v in values):
                raise UserError(f"search.space.{key}: a choice lists a value twice")
            return cls(key, kind, tuple(values))
        number = int if kind == "int" else (int, float)
        if (len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, number)
                                    or not math.isfinite(v) for v in values)):
            what = "integers" if kind == "int" else "finite numbers"
            raise UserError(f"search.space.{key}: {kind} takes [low, high], two {what}")
        low, high = values
        if not low < high:
            raise UserError(f"search.space.{key}: low ({low}) must be below high ({high})")
        if kind == "loguniform" and low <= 0:
            raise UserError(f"search.space.{key}: loguniform needs low > 0, got {low}")
        return cls(key, kind, (low, high))

    def edges(self) -> tuple:
        """The values that bound what a sample can be: both ends of a range, every choice."""
        return self.values

    def domain(self, tune):
        """The Ray Tune sampler of this dimension."""
        if self.kind == "choice":
            return tune.choice(list(self.values))
        low, high = self.values
        if self.kind == "int":
            return tune.randint(low, high + 1)  # Tune's upper bound is exclusive
        return (tune.loguniform if self.kind == "loguniform" else tune.uniform)(low, high)


@dataclass
class SearchConfig:
    """The ``search:`` section of a sweep file (see the module docstring).

    Args:
        space: config key -> ``{kind: values}`` (kinds: :data:`KINDS`).
        trials: the number of trials to sample.
        split: the evaluation row whose score is the metric: the run's training setting
            (``train`` for pickup's default, ``clean`` for an env without distractors) or a
            split of ``eval.distractors``.
        measure: ``success_rate`` or ``return_mean`` of that row, maximised.
        algorithm: ``optuna`` (TPE; random sampling, with a note, if Optuna is missing) or
            ``random``.
        scheduler: ``asha`` (early stopping) or ``none`` (every trial runs its budget).
        grace_steps: ASHA: steps before a trial may be stopped, its first rung (0: one
            evaluation, ``eval.every``).
        reduction_factor: ASHA: the top 1/this of the trials at a rung go on; rungs lie at
            ``grace_steps`` times its powers.
        seed: the sampler's seed.
    """

    space: dict[str, Any] = field(default_factory=dict)
    trials: int = 8
    split: str = "train"
    measure: str = "success_rate"
    algorithm: str = "optuna"
    scheduler: str = "asha"
    grace_steps: int = 0
    reduction_factor: int = 3
    seed: int = 0

    def __post_init__(self):
        if not self.space:
            raise UserError("search.space is empty; give at least one key, e.g. "
                            "search: {space: {ppo.learning_rate: {loguniform: [1.0e-4, 1.0e-3]}}}")
        for key in self.space:
            if key in ("train.timesteps", "eval.every", "seed"):
                raise UserError(f"search.space cannot hold {key}: every trial shares the "
                                "budget, the evaluations and the seed; set it in overrides")
        self.dimensions()  # checks every dimension
        for name, value, valid in (("algorithm", self.algorithm, ALGORITHMS),
                                   ("scheduler", self.scheduler, SCHEDULERS),
                                   ("measure", self.measure, MEASURES)):
            if value not in valid:
                raise UserError(f"search.{name} '{value}' is not one of: {', '.join(valid)}")
        if self.trials < 1:
            raise UserError(f"search.trials must be at least 1, got {self.trials}")
        if self.grace_steps < 0 or self.reduction_factor < 2:
            raise UserError("search.grace_steps must be 0 or more and search.reduction_factor "
                            "at least 2")

    def dimensions(self) -> list[Dimension]:
        return [Dimension.parse(key, spec) for key, spec in self.space.items()]

    @property
    def metric(self) -> str:
        """The metric's name in Tune's results: ``SPLIT/MEASURE``."""
        return metric_name(self.split, self.measure)


def metric_name(split: str, measure: str) -> str:
    return f"{split}/{measure}"


def edge_settings(search: SearchConfig) -> Iterator[dict[str, Any]]:
    """Every dimension at its first edge, then each other edge of each dimension with the
    others at their first: what ``validate`` checks (a sum, not a product)."""
    dims = search.dimensions()
    first = {d.key: d.edges()[0] for d in dims}
    yield first
    for d in dims:
        for value in d.edges()[1:]:
            yield {**first, d.key: value}


def check_metric(search: SearchConfig, cfg) -> None:
    """The metric's split must be a row the run's evaluations play, and there must be
    evaluations during training (the scheduler and the sampler see nothing else)."""
    from rimrl.sb3.periodic_evaluation import evaluation_rows

    if not getattr(cfg, "eval", None) or not cfg.eval.every:
        raise UserError("a search needs evaluations during training: set eval.every (env "
                        "steps between evaluations) in the overrides, e.g. eval.every: 50000")
    if cfg.eval.every > cfg.train.timesteps:
        raise UserError(f"eval.every ({cfg.eval.every}) is past train.timesteps "
                        f"({cfg.train.timesteps}): the trials would never be scored")
    rows = evaluation_rows(cfg)
    if search.split not in rows:
        raise UserError(f"search.split '{search.split}' is not evaluated during training; the "
                        f"rows are: {', '.join(rows)} (add a split with eval.distractors)")


def committed_scores(rows: list[dict], count: int, after: int) -> list[dict[str, Any]]:
    """The committed evaluations (the first ``count`` rows of ``evaluations.csv``) made after
    step ``after``, one result per step: ``{"timesteps": step, "SPLIT/success_rate": ...,
    "SPLIT/return_mean": ...}`` for every split of that evaluation, in step order."""
    results: dict[int, dict[str, Any]] = {}
    for row in rows[:count]:
        if row["step"] > after:
            result = results.setdefault(row["step"], {"timesteps": row["step"]})
            for measure in MEASURES:
                result[metric_name(row["split"], measure)] = row[measure]
    return [results[step] for step in sorted(results)]


def best_overrides(sweep_overrides: dict[str, Any], values: dict[str, Any]) -> dict:
    """The nested config of the overrides with a trial's sampled values over them: what
    ``rimrl train --config`` reads to train that trial's configuration again."""
    from rimrl.config import merge_override, override_text, parse_override

    data: dict = {}
    for key, value in {**sweep_overrides, **values}.items():
        path, parsed = parse_override(override_text(key, plain(value)))
        merge_override(data, path, parsed)
    return data


def plain(value: Any) -> Any:
    """A sampled value as a plain Python number (samplers hand out NumPy scalars)."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        return value.item()
    return value


def write_best_config(path: Path, data: dict, comment: str) -> None:
    """``data`` as YAML under a comment line, atomically."""
    import yaml

    from rimrl.runs import atomic_write

    text = "".join(f"# {line}\n" for line in comment.splitlines())
    text += yaml.safe_dump(data, sort_keys=True)

    def write(tmp: str) -> None:
        Path(tmp).write_text(text)
    atomic_write(path, write)


def search_record(sweep) -> dict:
    """What must not change between a search and its re-run: the command, the overrides
    and the search section."""
    import dataclasses

    return {"command": sweep.command, "overrides": sweep.overrides,
            "search": dataclasses.asdict(sweep.search)}


def check_unchanged(sweep) -> Optional[dict]:
    """Refuse a re-run whose sweep file changed what the trials sample or train; returns the
    recorded search (``None`` for a new one)."""
    import yaml

    path = sweep.root / SEARCH_RECORD
    if not path.is_file():
        return None
    try:
        recorded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        raise UserError(f"{path} is corrupt; delete the sweep's folder {sweep.root} to start "
                        "the search again") from None
    if recorded != yaml.safe_load(yaml.safe_dump(search_record(sweep))):
        raise UserError(f"the search in {sweep.root} was started with other settings (see "
                        f"{path}); give the sweep another name, or restore the file")
    return recorded
