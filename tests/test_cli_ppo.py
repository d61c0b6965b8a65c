"""``rimrl train ppo`` / ``rimrl evaluate`` on tiny fake envs and budgets."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rimrl.cli import main
from rimrl.runs import list_checkpoints
from tests.conftest import TINY, only_run

@pytest.mark.parametrize("core", ["rims", "lstm", "gru", "none"])
def test_train_and_evaluate_image_env(tmp_path, core, capsys):
    code = main(["train", "ppo", "--env", "rimrl/CueImage-v0", "--core", core, "--timesteps",
                 "256", "--runs-dir", str(tmp_path)] + TINY)
    assert code == 0
    run = only_run(tmp_path)
    for name in ("config.yaml", "run.json", "model.zip", "train_summary.json"):
        assert (run / name).is_file(), name
    assert [p.name for p in list_checkpoints(run)] == ["ckpt_000000000128.zip",
                                                      "ckpt_000000000256.zip"]
    events = list((run / "tb").glob("events.out.tfevents.*"))
    assert events
    progress = (run / "tb" / "progress.csv").read_text()
    assert "rollout/ep_rew_mean" in progress and "time/fps" in progress
    import csv
    magnitudes = [float(r["core/state_abs_max"]) for r in csv.DictReader(io.StringIO(progress))
                  if r.get("core/state_abs_max")]
    if core == "none":  # no state: the zeros it carries are never written
        assert magnitudes and max(magnitudes) == 0.0
    else:
        assert magnitudes and all(0 < m < float("inf") for m in magnitudes)
    if core != "rims":
        assert max(magnitudes) <= 1.0  # tanh-bounded states
    if core == "rims":
        import numpy as np
        assert "rims/active_fraction/0" in progress
        import csv
        rows = list(csv.DictReader(io.StringIO(progress)))
        last = [r for r in rows if r.get("rims/set_entropy_bits")][-1]
        # 3 RIMs, 2 active: 3 possible sets; CueImage episodes start every 5 steps
        assert 0.0 <= float(last["rims/set_entropy_bits"]) <= np.log2(3) + 1e-9
        assert float(last["rims/distinct_sets"]) >= 1
        assert 1 / 3 <= float(last["rims/top_set_share"]) <= 1.0
        assert last["rims/start_set_entropy_bits"] != ""
        import numpy as np
        record = np.load(run / "rims_activation.npz")  # the last rollout of env 0
        pattern = record["active"]
        assert pattern.shape == (3, 32)  # 3 RIMs x n_steps
        assert np.all(pattern.sum(0) == 2)  # exactly k_A = 2 active at every step
        # CueImage episodes last 5 steps: every 5th step ends one (the rollout's offset varies)
        ends = np.flatnonzero(record["episode_ends"])
        assert len(ends) >= 5 and np.all(np.diff(ends) == 5)
    else:
        assert not (run / "rims_activation.npz").exists()
    assert main(["evaluate", str(run), "--episodes", "3", "--video"]) == 0
    result = json.loads((run / "evaluation.json").read_text())
    assert result["episodes"] == 3 and len(result["scores"]) == 3
    assert result["min"] <= result["mean"] <= result["max"]
    assert (run / "videos" / "episode_0.gif").stat().st_size > 0
    assert "raw score mean" in capsys.readouterr().out


def test_resume_continues_from_last_checkpoint(tmp_path):
    args = ["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
            "--runs-dir", str(tmp_path)] + TINY
    assert main(args + ["--timesteps", "256"]) == 0
    run = only_run(tmp_path)
    killed_after_the_commit_at(run, 128)
    assert main(["train", "ppo", "--resume", str(run), "--timesteps", "384", "--no-progress"]) == 0
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["timesteps"] == 384
    assert list_checkpoints(run)[-1].name == "ckpt_000000000384.zip"
    assert "timesteps: 384" in (run / "config.yaml").read_text()


def killed_after_the_commit_at(run, step):
    """Make ``run`` look killed after its commit at ``step``: the record names that
    iteration, later checkpoints and the final files are gone, the later rows are still in
    ``progress.csv`` (written, never committed: the resume must drop them)."""
    from rimrl.commits import Commit

    for path in list_checkpoints(run):
        if int(path.stem.split("_")[1]) > step:
            path.unlink()
    (run / "model.zip").unlink()
    (run / "train_summary.json").unlink()
    rows = sum(int(r["time/total_timesteps"]) <= step for r in csv_rows(run))
    Commit(step=step, checkpoint=f"ckpt_{step:012d}.zip", progress_rows=rows,
           evaluation_rows=0).write(run)


def csv_rows(run):
    import csv
    with open(run / "tb" / "progress.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_resume_keeps_the_learning_curve(tmp_path):
    """After a crash past the 128-step checkpoint, the resumed run's progress.csv holds the
    original rows up to 128 unchanged and every later step exactly once."""
    args = ["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "gru",
            "--runs-dir", str(tmp_path)] + TINY[:-1] + ["--set", "train.checkpoint_every=64"]
    assert main(args + ["--timesteps", "256"]) == 0
    run = only_run(tmp_path)
    before = csv_rows(run)
    assert [int(r["time/total_timesteps"]) for r in before] == [64, 128, 192, 256]
    killed_after_the_commit_at(run, 128)
    assert main(["train", "ppo", "--resume", str(run), "--timesteps", "320", "--quiet"]) == 0
    after = csv_rows(run)
    assert [int(r["time/total_timesteps"]) for r in after] == [64, 128, 192, 256, 320]
    for old, new in zip(before[:2], after[:2]):
        assert {k: v for k, v in new.items() if k in old} == old
    assert after[2]["time/iterations"] == "1"  # 192 comes from the resumed process


@pytest.mark.slow
def test_kill_9_then_resume(tmp_path):
    cmd = [sys.executable, "-m", "rimrl", "train", "ppo", "--env", "rimrl/CueVector-v0",
           "--core", "rims", "--timesteps", "100000", "--runs-dir", str(tmp_path)] + TINY
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    run = None
    while time.time() < deadline:
        runs = [p for p in tmp_path.iterdir() if p.is_dir()] if tmp_path.exists() else []
        if runs and len(list_checkpoints(runs[0])) >= 2:
            run = runs[0]
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert run is not None
    last = list_checkpoints(run)[-1]
    steps = int(last.stem.split("_")[1])
    assert main(["train", "ppo", "--resume", str(run), "--timesteps", str(steps + 128),
                 "--no-progress"]) == 0
    assert json.loads((run / "train_summary.json").read_text())["timesteps"] == steps + 128


@pytest.mark.parametrize("args, message", [
    (["--env", "DemonAtack"], "closest: DemonAttack"),
    (["--env", "NoSuchThing-v9"], "unknown env 'NoSuchThing-v9'"),
    (["--env", "rimrl/CueVector-v0", "--core", "lstmm"], "did you mean 'lstm'"),
    (["--env", "rimrl/CueVector-v0", "--encoder", "resnett"], "unknown encoder 'resnett'"),
    (["--env", "rimrl/CueVector-v0", "--timesteps", "0"], "train.timesteps must be a positive"),
    (["--env", "rimrl/CueVector-v0", "--set", "ppo.chunk_length=5"], "multiple of ppo.chunk_length"),
    (["--env", "rimrl/CueVector-v0", "--set", "ppo.n_stepz=5"], "did you mean 'ppo.n_steps'"),
])
def test_bad_input(tmp_path, capsys, args, message):
    code = main(["train", "ppo", "--runs-dir", str(tmp_path / "runs"), "--no-progress"] + args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_corrupt_checkpoint_on_resume(tmp_path, capsys):
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm", "--timesteps",
                 "128", "--runs-dir", str(tmp_path)] + TINY) == 0
    run = only_run(tmp_path)
    ckpt = list_checkpoints(run)[-1]
    ckpt.write_bytes(b"garbage")
    model_before = (run / "model.zip").read_bytes()
    assert main(["train", "ppo", "--resume", str(run), "--timesteps", "256", "--trust"]) == 2
    err = capsys.readouterr().err.strip()
    assert "corrupt" in err and len(err.splitlines()) == 1
    assert (run / "model.zip").read_bytes() == model_before


def test_a_model_file_rimrl_did_not_write_is_not_loaded(tmp_path, capsys):
    """SB3 zips embed pickles: a model.zip or checkpoint replaced after rimrl wrote it (here:
    one whose pickled entry would create a file) is refused on evaluate and resume unless
    --trust; the pickle never runs."""
    import pickle

    from sb3_files import replace_serialized

    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm", "--timesteps",
                 "128", "--runs-dir", str(tmp_path / "runs")] + TINY) == 0
    run = only_run(tmp_path / "runs")
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for target in (run / "model.zip", list_checkpoints(run)[-1]):
        replace_serialized(target, "lr_schedule", pickle.dumps(Exploit()))
    capsys.readouterr()
    assert main(["evaluate", str(run), "--episodes", "1"]) == 2
    assert main(["train", "ppo", "--resume", str(run), "--timesteps", "256"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("differs from the file rimrl wrote" in e for e in err)
    assert "--trust" in err[0]
    assert not marker.exists()


def test_evaluate_without_model(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("env: {id: rimrl/CueVector-v0}\n")
    (run / "run.json").write_text('{"kind": "ppo"}')
    assert main(["evaluate", str(run)]) == 2
    assert "no model.zip and no checkpoint" in capsys.readouterr().err


def test_nfm_resnet_encoder_plugs_into_ppo(tmp_path):
    assert main(["train", "ppo", "--env", "rimrl/CueImage-v0", "--core", "gru",
                 "--encoder", "nfm-resnet", "--timesteps", "64", "--runs-dir", str(tmp_path),
                 "--set", "policy.encoder_kwargs={channels: [4, 4], passes: 2}"] + TINY) == 0
    text = (only_run(tmp_path) / "config.yaml").read_text()
    assert "encoder: nfm-resnet" in text and "passes: 2" in text


def test_one_writer_per_run_directory(tmp_path, capsys):
    """While a process holds a run (here: this test, through the same lock rimrl train
    takes), a resume or a new training into it is refused in one line naming the PID, and
    nothing in it changes; once released, resume works."""
    from rimrl.runs import RunLock

    args = ["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
            "--run-dir", str(tmp_path / "run")] + TINY
    assert main(args + ["--timesteps", "64"]) == 0
    run = tmp_path / "run"
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.name != ".lock"}
    capsys.readouterr()
    with RunLock(run).acquire():
        assert main(["train", "ppo", "--resume", str(run), "--timesteps", "128"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"PID {os.getpid()}" in err[0]
        assert main(args + ["--timesteps", "64"]) == 2  # a run: refused before the lock
        assert "already holds a run" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.name != ".lock"} == before
    fresh = tmp_path / "fresh"  # a run being created by another process: its lock answers
    fresh.mkdir()
    with RunLock(fresh).acquire():
        assert main(args[:-len(TINY) - 2] + ["--run-dir", str(fresh), "--timesteps", "64"]
                    + TINY) == 2
        assert f"PID {os.getpid()}" in capsys.readouterr().err
    assert main(args + ["--timesteps", "64"]) == 2  # not locked, but already a run
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "ppo", "--resume", str(run), "--timesteps", "128", "--quiet"]) == 0


def test_run_dir_that_is_a_file_is_named_as_such(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--run-dir", str(target)]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
