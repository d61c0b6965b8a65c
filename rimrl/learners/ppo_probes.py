"""``rimrl evaluate RUN --probe NAME``: what a recurrent policy's memory is worth, and which
RIM carries what.

- ``memoryless``: the policy's state is reset before every step, so each action depends on
  the current observation only. The *memory gain* of a split is the success of the normal
  policy minus that of the memoryless one on the same episodes (same seeds): a task a
  memoryless policy solves as well gives no recurrent core room to show an advantage.
- ``ablate-rims``: for each RIM in turn, its part of the state (h and c) is zeroed before
  every step, so that RIM acts on each step as if the episode had just begun while the
  others keep their memory. The *drop* of RIM k is the normal success minus the success
  with RIM k ablated.

Each probe plays ``--episodes`` episodes per row (the setting the run trained on, or the
``--distractors`` splits) for the normal policy and for each probed variant, with the same
evaluation seed, and writes ``probe_<name>.json`` beside ``distractors.json`` (success with
a 95% Wilson interval, and mean return, per row and variant).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from rimrl.errors import UserError
from rimrl.progress import say, shows_bar
from rimrl.runs import probe_path, write_result
from rimrl.sb3.environments import make_env

PROBES = ("memoryless", "ablate-rims")


def state_hooks(probe: str, cfg, model) -> dict[str, Optional[Callable]]:
    """The variants a probe plays, by name: ``normal`` (no hook) first, then each probed
    variant's hook (``state -> state``, applied before every step). A one-line error when
    the run cannot take the probe."""
    policy = model.policy
    if getattr(policy, "lstm_actor", None) is None or cfg.core.name == "none":
        raise UserError(f"--probe {probe} needs a recurrent policy (a PPO run with a core); "
                        "this run's policy has no state")
    hooks: dict[str, Optional[Callable]] = {"normal": None}
    if probe == "memoryless":
        hooks["memoryless"] = lambda state: None  # predict() starts a None state from zeros
        return hooks
    if cfg.core.name != "rims":
        raise UserError(f"--probe ablate-rims needs a rims core; this run's core is "
                        f"{cfg.core.name} (try --probe memoryless)")
    units, size = cfg.core.num_units, cfg.core.hidden_size // cfg.core.num_units
    for k in range(units):
        hooks[f"rim {k}"] = _zero_slice(k * size, (k + 1) * size)
    return hooks


def _zero_slice(start: int, stop: int) -> Callable:
    def hook(state):
        if state is None:
            return None
        out = tuple(s.copy() for s in state)  # (h, c), each (layers, envs, hidden)
        for s in out:
            s[..., start:stop] = 0.0
        return out
    return hook


def run_probe(request, cfg, model, path: Path, rows: list[str], seed: int, tags: dict) -> int:
    """Play every row with every variant of the requested probe (``request``: an
    :class:`~rimrl.learners.requests.EvalRequest` with PPO's options); print and write the
    table."""
    from rimrl.sb3.evaluation import play  # heavy
    from rimrl.report.stats import wilson_ci  # heavy

    run_dir, opts = request.run_dir, request.options
    hooks = state_hooks(opts.probe, cfg, model)
    n_envs = min(cfg.env.n_envs, opts.episodes)
    say(f"probe {opts.probe}: {len(rows)} rows x {len(hooks)} variants x {opts.episodes} "
        f"episodes", enabled=not request.quiet)
    table: dict = {}
    for row in rows:
        table[row] = {}
        for name, hook in hooks.items():
            env = make_env(cfg, n_envs=n_envs, seed=seed, training=False,
                           distractors=None if row == "clean" else row)
            episodes, _ = play(model, env, opts.episodes, deterministic=opts.deterministic,
                               label=f"{row}, {name}", show=shows_bar(request), state_hook=hook)
            env.close()
            rate, lo, hi = wilson_ci(sum(bool(s) for _, s in episodes), len(episodes))
            table[row][name] = {"episodes": len(episodes), "success_rate": rate,
                                "success_ci95": [lo, hi],
                                "return_mean": sum(r for r, _ in episodes) / len(episodes)}
        normal = table[row]["normal"]["success_rate"]
        for name, result in table[row].items():
            if name != "normal":
                result["drop"] = normal - result["success_rate"]
    result = {"env": cfg.env.id, **tags, "probe": opts.probe, "checkpoint": path.name,
              "episodes_per_row": opts.episodes, "deterministic": opts.deterministic,
              "seed": seed, "rows": table}
    out = probe_path(run_dir, opts.probe)
    print(format_probe_table(result), flush=True)
    write_result(out, result)
    print(f"written: {out}")
    return 0


def format_probe_table(result: dict) -> str:
    """Success per row (lines) and variant (columns) with Wilson intervals; the drop from
    the normal policy in the last line of each row."""
    variants = list(next(iter(result["rows"].values())))
    tags = ", ".join(f"{k} {result[k]}" for k in ("core",) if k in result)
    lines = [f"{result['env']}, {tags}, probe {result['probe']}, {result['episodes_per_row']} "
             "episodes per row and variant; success [95% Wilson interval], drop = normal - "
             "variant",
             f"{'row':<12} " + " ".join(f"{v:>22}" for v in variants)]
    for row, cells in result["rows"].items():
        lines.append(f"{row:<12} " + " ".join(
            f"{c['success_rate']:>6.3f} [{c['success_ci95'][0]:.3f}, {c['success_ci95'][1]:.3f}]"
            .rjust(22) for c in cells.values()))
        lines.append(f"{'  drop':<12} " + " ".join(
            (f"{c['drop']:+.3f}" if "drop" in c else "").rjust(22) for c in cells.values()))
    return "\n".join(lines)
