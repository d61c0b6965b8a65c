"""The headline commands as a user types them: the installed ``rimrl`` script in a fresh
process, default flags (progress bar and progress lines on), only a tiny budget and, where
the default env would take minutes, a tiny registered env. Each asserts exit 0 and what the
run directory holds."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rimrl.sb3.callbacks import format_progress_line
from rimrl.runs import list_checkpoints


def rimrl(*args, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """``rimrl ARGS`` as typed in a shell in ``cwd`` (the console script, not main())."""
    return subprocess.run(["rimrl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return done.stdout


def only_run(runs: Path) -> Path:
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return run


def progress_rows(run: Path) -> list[dict]:
    with open(run / "tb" / "progress.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory) -> tuple[Path, str]:
    """``rimrl train ppo --env rimrl/CueImage-v0 --timesteps 4096`` (4 rollouts of the
    defaults: 8 envs x 128 steps, RIMs of 510 units)."""
    cwd = tmp_path_factory.mktemp("user")
    out = ok(rimrl("train", "ppo", "--env", "rimrl/CueImage-v0", "--timesteps", "4096",
                   cwd=cwd))
    return only_run(cwd / "runs"), out


def test_train_ppo_as_typed(ppo_run):
    run, out = ppo_run
    for name in ("config.yaml", "run.json", "model.zip", "train_summary.json",
                 "rims_activation.npz", "tb/progress.csv"):
        assert (run / name).is_file(), name
    assert list_checkpoints(run)[-1].name == "ckpt_000000004096.zip"
    # one progress line per 4 logged rollouts, with the score of finished games and losses
    lines = [line for line in out.splitlines() if line.startswith("steps ")]
    assert lines and lines[-1].startswith("steps 4,096/4,096 (100%)")
    assert " games" in lines[-1] and "entropy" in lines[-1]
    rows = progress_rows(run)
    assert len(rows) == 4 and int(float(rows[-1]["rollout/games"])) >= 10
    summary = json.loads((run / "train_summary.json").read_text())
    assert len(summary["recent_episode_scores"]) >= 10
    assert "over the last" in out.splitlines()[-1]


def test_evaluate_as_typed(ppo_run, tmp_path):
    run, _ = ppo_run
    out = ok(rimrl("evaluate", str(run), cwd=tmp_path))
    result = json.loads((run / "evaluation.json").read_text())
    assert result["episodes"] == 10 and "raw score mean" in out


def test_compare_as_typed(ppo_run, tmp_path):
    run, _ = ppo_run
    out = ok(rimrl("compare", str(run.parent), "--out", str(tmp_path / "report"),
                   cwd=tmp_path))
    assert (tmp_path / "report" / "report.md").is_file()
    assert list((tmp_path / "report" / "figures").glob("curve_*.png"))
    assert "1 runs" in out


def test_train_iqn_as_typed(tmp_path):
    out = ok(rimrl("train", "iqn", "--env", "rimrl/CueImage-v0", "--timesteps", "300",
                   cwd=tmp_path))
    run = only_run(tmp_path / "runs")
    for name in ("config.yaml", "run.json", "model.zip", "train_summary.json",
                 "tb/progress.csv"):
        assert (run / name).is_file(), name
    assert list_checkpoints(run)
    assert "trained on rimrl/CueImage-v0 (encoder" in out


def test_evaluate_distractors_shows_the_work_up_front(tmp_path):
    ok(rimrl("train", "ppo", "--env", "rimrl/Pickup-v0", "--timesteps", "1024",
             "--n-envs", "8", cwd=tmp_path))
    run = only_run(tmp_path / "runs")
    out = ok(rimrl("evaluate", str(run), "--distractors", "all", "--episodes", "4",
                   cwd=tmp_path))
    assert "evaluating 5 settings (train, novel-color, novel-type, more, novel) x 4 " \
           "episodes = 20 episodes" in out
    assert "  novel: 4 episodes" in out
    assert set(json.loads((run / "distractors.json").read_text())["splits"]) == \
        {"train", "novel-color", "novel-type", "more", "novel"}


def test_ctrl_c_saves_a_checkpoint_and_exits_with_the_resume_command(tmp_path):
    """SIGINT to a real training process: it exits within seconds with a checkpoint that
    ``--resume`` continues from."""
    run = tmp_path / "run"
    proc = subprocess.Popen(["rimrl", "train", "ppo", "--env", "rimrl/CueImage-v0",
                             "--timesteps", "10000000", "--run-dir", str(run)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "tb" / "progress.csv").is_file():  # training is under way
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.2)
        assert not list_checkpoints(run)  # the first regular one is 5,000 steps away
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    (checkpoint,) = list_checkpoints(run)
    assert f"continue with: rimrl train ppo --resume {run}" in out
    assert not (run / "model.zip").exists()
    steps = int(checkpoint.stem.split("_")[1])
    out = ok(rimrl("train", "ppo", "--resume", str(run), "--timesteps", str(steps + 1024),
                   cwd=tmp_path))
    assert f"resuming at {steps} steps" in out and (run / "model.zip").is_file()


def test_progress_line_format():
    values = {"time/total_timesteps": 12288, "time/fps": 158.4,
              "rollout/ep_rew_mean": 345.04, "train/loss": 0.0312,
              "train/entropy_loss": -1.78}
    assert format_progress_line(values, 50000, games=12) == (
        "steps 12,288/50,000 (25%) | 158 steps/s | score 345.0 over 12 games | "
        "loss 0.0312 | entropy -1.78")
    assert "| score 0.812 over 12 games |" in format_progress_line(
        dict(values, **{"rollout/ep_rew_mean": 0.81234}), 50000, games=12)
    assert "score n/a (no game finished yet)" in format_progress_line(
        {"time/total_timesteps": 1024}, 50000, games=0)


@pytest.mark.parametrize("command,example", [
    ("ppo", "ppo.learning_rate=3e-4"), ("iqn", "iqn.learning_rate=1e-4"),
    ("copy", "train.learning_rate=3e-4"), ("supervised", "train.learning_rate=3e-4")])
def test_help_set_example_is_accepted(tmp_path, command, example):
    """The ``--set`` example in each train command's --help is a key it accepts."""
    from rimrl.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["train"]
    help_text = sub._subparsers._group_actions[0].choices[command].format_help()
    assert example in " ".join(help_text.split())
    budget = {"ppo": ["--timesteps", "64"], "iqn": ["--timesteps", "64"],
              "copy": ["--updates", "1"], "supervised": ["--updates", "1"]}[command]
    env = {"ppo": ["--env", "rimrl/CueVector-v0"], "iqn": ["--env", "rimrl/CueImage-v0"]}.get(
        command, [])
    done = rimrl("train", command, *env, *budget, "--set", example, "--quiet",
                 "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert "did you mean" not in done.stderr and done.returncode == 0, done.stderr


def test_progress_bar_draws_on_a_terminal_and_not_in_a_log(monkeypatch, capsys):
    """Bars go to stderr when it is a terminal (80 columns when it reports none), never into
    a log file; --no-progress/--quiet pass enabled=False."""
    import io
    import sys

    from rimrl.progress import bar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

        def fileno(self):
            raise OSError("no size")  # a pty reporting no width

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    b = bar(10, "training", unit="step")
    b.update(5)
    b.refresh()
    assert "training:  50%" in terminal.getvalue() and b.ncols == 80
    b.close()
    quiet = bar(10, "training", unit="step", enabled=False)
    assert quiet.disable
    log = io.StringIO()  # not a terminal
    monkeypatch.setattr(sys, "stderr", log)
    assert bar(10, "training").disable and log.getvalue() == ""


def test_final_line_says_what_the_score_means():
    """Atari: the raw score beside its human-normalized value, the random and human
    references and the share of the paper's budget; pickup: success with its Wilson
    interval; anything else: the raw score alone."""
    from rimrl.sb3.environments import PAPER_ATARI_STEPS, final_score_text

    atari = final_score_text("DemonAttack", [166.5, 166.5], 50_176)
    assert atari.startswith("raw score 166.5 over the last 2 games = 0.8% human-normalized "
                            "(random play 152.1, human 1,971.0)")
    assert atari.endswith("; 50,176 steps is 0.5% of the paper's 10,000,000")
    assert "paper" not in final_score_text("DemonAttack", [200.0], PAPER_ATARI_STEPS)
    assert "4,096 steps is 0.041% of" in final_score_text("DemonAttack", [200.0], 4096)
    pickup = final_score_text("rimrl/Pickup-v1", [0.8, 0.0, 0.6, 0.0], 1000)
    assert pickup == ("raw score 0.35 over the last 4 games; success 0.500 [0.150, 0.850] "
                      "(95% Wilson)")
    assert final_score_text("CartPole-v1", [20.0], 100) == "raw score 20.0 over the last 1 games"
    assert "no game finished" in final_score_text("DemonAttack", [], 100)


def test_training_eta_is_the_average_since_the_start(monkeypatch):
    """Rollouts come in bursts; the training bar's ETA uses the mean speed (smoothing 0)."""
    import rimrl.sb3.callbacks as callbacks

    seen = {}
    monkeypatch.setattr(callbacks, "bar", lambda *a, **kw: seen.update(kw) or object())
    progress = callbacks.TrainingProgress(100)
    progress.num_timesteps = 0
    progress._on_training_start()
    assert seen["smoothing"] == 0.0
