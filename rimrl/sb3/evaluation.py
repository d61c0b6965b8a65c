"""``rimrl evaluate`` for SB3-based runs (PPO, IQN): full episodes, distractor splits, video;
and :func:`play`, the one rollout player (evaluations during training and the probes use it).

The algorithm-specific parts (the run's config, the model loader, the fields naming the
model) come in as arguments, so every learner's runs are evaluated and reported the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from rimrl.commits import committed_checkpoint
from rimrl.errors import UserError
from rimrl.progress import bar, format_score, say, shows_bar
from rimrl.report.stats import bootstrap_mean_ci, wilson_ci
from rimrl.runs import (DISTRACTORS_FILE, EVALUATION_FILE, MODEL_ZIP, VIDEO_DIR, verify_checksum,
                        write_result)
from rimrl.sb3.environments import env_family, make_env, requested_splits
from rimrl.sb3.video import FrameRecorder, write_gif

#: ``rimrl evaluate`` seeds its envs with the run's seed plus this (unless ``--seed``)
EVALUATE_SEED_OFFSET = 10_000


@dataclass
class Evaluation:
    """What one ``rimrl evaluate`` plays: the model (from ``path``), the splits asked for
    (none: the setting the run trained on), the evaluation seed and the fields naming the
    model in results."""

    model: object
    path: Path
    splits: list[str]
    seed: int
    tags: dict


def load_evaluation(request, cfg, load: Callable, tags: dict) -> Evaluation:
    """The run's final model (else its committed checkpoint), verified and loaded, with the
    splits and seed of the request.

    Args:
        request: an :class:`~rimrl.learners.requests.EvalRequest`: the run directory, and
            its learner's options (``distractors``, ``seed``, ...).
        cfg: the run's config (its ``config.yaml``).
        load: ``load(path, device=...)`` -> an SB3 model; a one-line error when corrupt.
        tags: the fields naming the model in results, e.g. ``{"core": "rims"}``.
    """
    run_dir, opts = request.run_dir, request.options
    splits = requested_splits(cfg.env.id, opts.distractors)
    path = run_dir / MODEL_ZIP
    if not path.is_file():
        path = committed_checkpoint(run_dir)
        if path is None:
            raise UserError(f"{run_dir} has no model.zip and no checkpoint to evaluate")
    verify_checksum(run_dir, path, trust=request.trust)
    seed = cfg.seed + EVALUATE_SEED_OFFSET if opts.seed is None else opts.seed
    return Evaluation(load(path, device="cpu"), path, splits, seed, tags)


def evaluate_run(request, cfg, load: Callable, tags: dict) -> int:
    """Play ``--episodes`` full episodes with the run's final (or latest) model; with
    ``--distractors``, once per distractor split (arguments: :func:`load_evaluation`)."""
    e = load_evaluation(request, cfg, load, tags)
    if e.splits:
        return _evaluate_splits(request, cfg, e.model, e.path, e.splits, e.seed, e.tags)
    return _evaluate_plain(request, cfg, e.model, e.path, e.seed, e.tags)


def _evaluate_plain(request, cfg, model, path, seed, tags) -> int:
    run_dir, opts = request.run_dir, request.options
    env = make_env(cfg, n_envs=1, seed=seed, training=False,
                   render_mode="rgb_array" if opts.video else None)
    episodes, frames = play(model, env, opts.episodes, deterministic=opts.deterministic,
                            record=opts.video, label=cfg.env.id, show=shows_bar(request))
    env.close()
    scores = [r for r, _ in episodes]
    result = {"env": cfg.env.id, **tags, "checkpoint": str(path.name), "episodes": len(scores),
              "deterministic": opts.deterministic, "seed": seed,
              "mean": float(np.mean(scores)), "std": float(np.std(scores)),
              "min": float(np.min(scores)), "max": float(np.max(scores)), "scores": scores}
    if frames:
        gif = write_gif(frames, run_dir / VIDEO_DIR / "episode_0.gif")
        if gif is not None:
            result["video"] = str(gif)
    print(f"{cfg.env.id}, {_label(tags)}, {len(scores)} episodes ({path.name}): "
          f"raw score mean {format_score(result['mean'])} std {format_score(result['std'])} "
          f"min {format_score(result['min'])} max {format_score(result['max'])}", flush=True)
    if "video" in result:
        print(f"video: {result['video']}")
    write_result(run_dir / EVALUATION_FILE, result)  # printed first: a failed write loses nothing
    return 0


def _evaluate_splits(request, cfg, model, path, splits, seed, tags) -> int:
    """Success rate and return per split with 95% intervals over episodes: Wilson for the
    rate, a percentile bootstrap for the mean return (it stays within the returns seen, so a
    return bounded in [0, 1] keeps an interval in [0, 1]).

    Atari runs are also played on the clean game, and each split reports its score drop.
    """
    run_dir, opts = request.run_dir, request.options
    atari = env_family(cfg.env.id) == "atari"
    rows = (["clean"] if atari else []) + splits
    n_envs = min(cfg.env.n_envs, opts.episodes)
    say(f"evaluating {len(rows)} settings ({', '.join(rows)}) x {opts.episodes} episodes = "
        f"{len(rows) * opts.episodes} episodes", enabled=not request.quiet)
    table = {}
    videos = {}
    for split in rows:
        env = make_env(cfg, n_envs=n_envs, seed=seed, training=False,
                       distractors=None if split == "clean" else split,
                       render_mode="rgb_array" if opts.video else None)
        episodes, frames = play(model, env, opts.episodes, deterministic=opts.deterministic,
                                record=opts.video, label=split, show=shows_bar(request))
        env.close()
        if frames:
            gif = write_gif(frames, run_dir / VIDEO_DIR / f"{split}_episode_0.gif")
            if gif is not None:
                videos[split] = str(gif)
        returns = [r for r, _ in episodes]
        wins = sum(bool(s) for _, s in episodes)
        mean, lo, hi = (float(v) for v in bootstrap_mean_ci(np.array(returns, dtype=float)))
        rate, rlo, rhi = wilson_ci(wins, len(episodes))
        say(f"  {split}: {len(episodes)} episodes, return {mean:.3g}, success {rate:.3f}",
            enabled=not request.quiet)
        table[split] = {"episodes": len(episodes), "return_mean": mean, "return_ci95": [lo, hi],
                        "success_rate": rate, "success_ci95": [rlo, rhi], "returns": returns}
    if atari:
        clean = table["clean"]["return_mean"]
        for split in splits:
            drop = clean - table[split]["return_mean"]
            table[split]["score_drop"] = drop
            table[split]["score_drop_fraction"] = drop / abs(clean) if clean else None
    result = {"env": cfg.env.id, **tags, "checkpoint": str(path.name),
              "episodes_per_split": opts.episodes, "deterministic": opts.deterministic,
              "seed": seed, "splits": table}
    result, note = merged_with_earlier(run_dir / DISTRACTORS_FILE, result)
    print(format_split_table(result, atari), flush=True)
    for split, video in videos.items():
        print(f"video ({split}): {video}")
    write_result(run_dir / DISTRACTORS_FILE, result)  # printed first: a failed write loses nothing
    print(f"written: {run_dir / DISTRACTORS_FILE}{note}")
    return 0


#: what must match for two per-split evaluations to share one distractors.json
SAME_EVALUATION = ("checkpoint", "episodes_per_split", "deterministic", "seed")


def merged_with_earlier(path: Path, result: dict) -> tuple[dict, str]:
    """``result`` merged by split into the evaluation already in ``path`` when both evaluate
    the same model the same way (:data:`SAME_EVALUATION`); else ``result`` alone. Also a
    note saying what of the earlier file this replaces (empty if nothing)."""
    try:
        earlier = json.loads(path.read_text())
        earlier_splits = dict(earlier["splits"])
    except (OSError, ValueError, KeyError, TypeError):
        return result, ""
    if all(earlier.get(k) == result[k] for k in SAME_EVALUATION):
        merged = dict(result, splits={**earlier_splits, **result["splits"]})
        kept = [s for s in earlier_splits if s not in result["splits"]]
        replaced = [s for s in earlier_splits if s in result["splits"]]
        parts = ([f"kept the earlier evaluation's {', '.join(kept)}"] if kept else []) + (
            [f"replaced {', '.join(replaced)}"] if replaced else [])
        return merged, f" ({'; '.join(parts)})" if parts else ""
    return result, (f" (replaced an earlier evaluation of {', '.join(earlier_splits)} with "
                    "another model or setting)")


def format_split_table(result: dict, atari: bool) -> str:
    """The per-split table printed by ``rimrl evaluate --distractors``."""
    tags = {k: result[k] for k in ("core", "encoder") if k in result}
    head = (f"{result['env']}, {_label(tags)}, {result['episodes_per_split']} episodes "
            "per split, 95% intervals")
    if atari:
        lines = [head, f"{'split':<12} {'raw score':>10} {'95% CI':>22} {'drop':>8}"]
        for split, r in result["splits"].items():
            lo, hi = r["return_ci95"]
            drop = r.get("score_drop_fraction")
            drop_text = "" if drop is None else f"{100 * drop:7.1f}%"
            lines.append(f"{split:<12} {r['return_mean']:>10.1f} "
                         f"{f'[{lo:.1f}, {hi:.1f}]':>22} {drop_text:>8}")
        return "\n".join(lines)
    lines = [head, f"{'split':<12} {'success':>8} {'95% CI':>16} {'return':>8} {'95% CI':>16}"]
    for split, r in result["splits"].items():
        slo, shi = r["success_ci95"]
        lo, hi = r["return_ci95"]
        lines.append(f"{split:<12} {r['success_rate']:>8.3f} {f'[{slo:.3f}, {shi:.3f}]':>16} "
                     f"{r['return_mean']:>8.3f} {f'[{lo:.3f}, {hi:.3f}]':>16}")
    return "\n".join(lines)


def _label(tags: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in tags.items())


def play(model, env, episodes: int, deterministic: bool = False, record: bool = False,
         max_frames: int = 4000, label: str = "episodes", show: bool = False,
         state_hook: Optional[Callable] = None,
         stop_requested: Callable[[], bool] = lambda: False):
    """Run ``episodes`` whole episodes spread evenly over the env's copies (so short episodes
    are not over-counted). Returns [(return, success)] and the frames of the first episode
    when ``record``. The return is Monitor's (the raw game score over all lives for Atari);
    success is the env's ``info["success"]`` where it reports one, else return > 0.
    ``show``: a progress bar named ``label`` with the running mean return. ``state_hook``:
    ``state -> state``, applied to the policy's recurrent state before every step (the
    probes of :mod:`rimrl.learners.ppo_probes`). ``stop_requested``: checked before every step;
    once true, play stops and returns the episodes finished so far (a stop during a long
    evaluation takes effect within a step, not after the last episode)."""
    progress = bar(episodes, label, unit="ep", enabled=show)
    n = env.num_envs
    targets = [(episodes + i) // n for i in range(n)]
    counts = [0] * n
    core = getattr(getattr(model, "policy", None), "core_actor", None)
    recorder = None
    if record:  # env 0's first episode, captioned (rimrl.sb3.video)
        units = getattr(core, "num_units", None)
        recorder = env.envs[0] = FrameRecorder(env.envs[0], max_frames, units)
    obs = env.reset()
    state, starts = None, np.ones((n,), dtype=bool)
    results = []
    while any(c < t for c, t in zip(counts, targets)) and not stop_requested():
        if state_hook is not None:
            state = state_hook(state)
        action, state = model.predict(obs, state=state, episode_start=starts,
                                      deterministic=deterministic)
        if recorder is not None and getattr(core, "last_active", None) is not None:
            recorder.note_active(core.last_active[-1, 0].cpu().numpy())
        obs, _, dones, infos = env.step(action)
        starts = dones
        for i, info in enumerate(infos):
            if "episode" in info and counts[i] < targets[i]:
                score = float(info["episode"]["r"])
                results.append((score, bool(info.get("success", score > 0))))
                counts[i] += 1
                progress.update(1)
                progress.set_postfix(mean=f"{np.mean([r for r, _ in results]):.3g}")
    progress.close()
    return results, (recorder.frames if recorder is not None else [])
