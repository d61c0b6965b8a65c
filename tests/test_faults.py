"""Fault injection on real training processes (marked slow; the short versions are in the
default suite: test_cli_ppo.py's resume-history and one-writer tests, test_headline.py's
Ctrl-C test, test_cli_iqn.py's divergence test).

kill -9 at random moments (during rollouts, updates and checkpoint writes alike), then
--resume, several times over: the run ends at its budget, ``progress.csv`` never logs a
segment twice (PPO: every step once), its rows up to the first resumed checkpoint equal
those of an uninterrupted run with the same seed, no torn temporary file is left, and the
final model evaluates."""

import csv
import random
import signal
import subprocess
import sys
import time

import pytest

from rimrl.runs import list_checkpoints

COMMANDS = {
    "ppo": ["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "gru", "--n-envs", "2",
            "--set", "core.hidden_size=12", "--set", "policy.features_dim=16",
            "--set", "ppo.n_steps=32", "--set", "ppo.batch_size=32",
            "--set", "ppo.chunk_length=8", "--set", "train.checkpoint_every=64"],
    "iqn": ["train", "iqn", "--env", "rimrl/CueImage-v0", "--n-envs", "2",
            "--set", "policy.features_dim=16", "--set", "policy.hidden_size=16",
            "--set", "iqn.learning_starts=50", "--set", "iqn.buffer_size=2000",
            "--set", "iqn.batch_size=8", "--set", "train.checkpoint_every=100",
            "--set", "train.log_interval=1", "--set", "train.save_replay=true"],
}
STABLE = ("rollout/ep_rew_mean", "train/loss", "train/value_loss")  # not timings


def rows(run):
    with open(run / "tb" / "progress.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def run_cli(args, **kwargs):
    return subprocess.run([sys.executable, "-m", "rimrl", *args], capture_output=True,
                          text=True, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("learner", ["ppo", "iqn"])
def test_kill_9_at_random_moments_then_resume(tmp_path, learner):
    budget = {"ppo": 20000, "iqn": 1600}[learner]  # each ~20 s of training here
    base = COMMANDS[learner] + ["--quiet", "--seed", "3"]
    reference = tmp_path / "reference"
    assert run_cli(base + ["--timesteps", str(budget), "--run-dir", str(reference)]
                   ).returncode == 0
    run = tmp_path / "killed"
    rng = random.Random(0)
    command = base + ["--timesteps", str(budget), "--run-dir", str(run)]
    resumed_at = []
    for cycle in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "rimrl", *command],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(4.0, 9.0))  # start-up takes ~3 s
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (run / "model.zip").exists():
            break
        command = ["train", learner, "--resume", str(run), "--quiet"]
        checkpoints = list_checkpoints(run)
        if checkpoints:
            resumed_at.append(int(checkpoints[-1].stem.split("_")[1]))
    if not (run / "model.zip").exists():
        done = run_cli(command if "--resume" in command else base + [
            "--timesteps", str(budget), "--run-dir", str(run)])
        assert done.returncode == 0, done.stderr[-2000:]
    assert resumed_at, "no kill landed after a checkpoint; lengthen the sleeps"
    got, want = rows(run), rows(reference)
    steps = [int(r["time/total_timesteps"]) for r in got]
    # no segment logged twice: steps never go back (IQN logs once per finished episode, so
    # two envs ending together give two rows of one step, in the reference run too)
    assert steps == sorted(steps) and steps[-1] >= budget
    if learner == "ppo":
        assert len(steps) == len(set(steps))
    first = min(resumed_at)
    for ours, theirs in zip(got, want):
        if int(theirs["time/total_timesteps"]) > first:
            break
        assert [ours.get(k) for k in STABLE] == [theirs.get(k) for k in STABLE]
    assert not list(run.rglob(".*.tmp"))
    assert run_cli(["evaluate", str(run), "--episodes", "1", "--quiet"]).returncode == 0
