"""Crash consistency by construction: a tiny run is killed (SIGKILL) at its N-th file write
for every N (``RIMRL_CRASH_AT_WRITE``, :mod:`rimrl.faults`), resumed, and must then be whole:

- every iteration's ``progress.csv`` row exactly once, every due evaluation exactly once;
- ``best_model.zip`` verified by its checksum and equal to the checkpoint of the best row's
  step; ``model.zip`` equal to the checkpoint at the budget (the final update is in it);
- everything up to the crash's last commit equal to the uninterrupted run's (rows without
  their wall-clock columns, checkpoints by weights): the envs restart on resume, so what
  comes later may differ (the copy task checkpoints its data stream, so all of it matches).

The default suite kills a PPO run at its key writes (:data:`KEY_WRITES`); ``-m slow`` at every write of
PPO, IQN and copy runs."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rimrl.faults import CRASH_VARIABLE, LOG_VARIABLE
from rimrl.runs import list_checkpoints, read_evaluations, verify_checksum

PPO = ["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm", "--timesteps", "256",
       "--eval-every", "128", "--set", "eval.episodes=2", "--set", "core.hidden_size=12",
       "--set", "policy.features_dim=16", "--set", "ppo.n_steps=32", "--set",
       "ppo.batch_size=32", "--set", "ppo.chunk_length=8", "--set", "ppo.n_epochs=1",
       "--set", "train.checkpoint_every=64", "--set", "train.keep_checkpoints=100"]
IQN = ["train", "iqn", "--env", "rimrl/CueImage-v0", "--timesteps", "96",
       "--eval-every", "48", "--set", "eval.episodes=2", "--set", "policy.features_dim=16",
       "--set", "policy.hidden_size=16", "--set", "iqn.n_quantiles=8",
       "--set", "iqn.n_target_quantiles=8", "--set", "policy.n_policy_quantiles=4",
       "--set", "iqn.learning_starts=16", "--set", "iqn.buffer_size=200",
       "--set", "iqn.batch_size=8", "--set", "train.checkpoint_every=32",
       "--set", "train.keep_checkpoints=100", "--set", "train.log_interval=1",
       "--set", "train.save_replay=true"]
COPY = ["train", "copy", "--core", "lstm", "--updates", "6", "--set", "core.hidden_size=12",
        "--set", "task.num_symbols=3", "--set", "task.train_gap=4",
        "--set", "task.eval_gaps=[4]", "--set", "train.eval_batch=8",
        "--set", "train.batch_size=4", "--set", "train.checkpoint_every=2",
        "--set", "train.keep_checkpoints=100"]
COMMON = ["--n-envs", "2", "--set", "threads=1", "--quiet"]
CLOCKS = ("time/fps", "time/time_elapsed", "seconds")  # wall-clock columns


#: a process that pays the imports of a training run once, then forks one child per command:
#: a command costs its training, not the ~7 s of importing torch, SB3 and torch's compiler
#: (Adam imports it); the children set
#: their own threads before torch computes anything, so the fork is safe
ZYGOTE = r"""
import json, os, sys, traceback
import stable_baselines3, gymnasium, torch, torch._dynamo, torch.utils.tensorboard
import rimrl.cli, rimrl.learners.ppo, rimrl.learners.iqn, rimrl.learners.copy
import rimrl.sb3.training, rimrl.sb3.iterations, rimrl.sb3.evaluation
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.environ.update(job["env"])
        out = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(out, 2)
        sys.argv = ["rimrl", *job["argv"]]
        try:
            code = rimrl.cli.main(job["argv"])
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


class Zygote:
    def __init__(self, folder: Path):
        self.folder = folder
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.jobs = 0

    def run(self, args, env=None) -> subprocess.CompletedProcess:
        self.jobs += 1
        log = self.folder / f"job-{self.jobs}.log"
        self.proc.stdin.write(json.dumps({"argv": args, "env": env or {},
                                          "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        code = int(self.proc.stdout.readline())
        output = log.read_text() if log.exists() else ""
        return subprocess.CompletedProcess(args, code, output, output)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture
def zygote(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    process = Zygote(logs)
    yield process
    process.close()


def command(base, run):
    return base + (COMMON if base is not COPY else ["--set", "threads=1", "--quiet"]) + [
        "--run-dir", str(run)]


def reference(rimrl, base, root: Path):
    """The uninterrupted run and its write points, as (label, path) in order."""
    run, log = root / "reference", root / "writes.txt"
    done = rimrl(command(base, run), {LOG_VARIABLE: str(log)})
    assert done.returncode == 0, done.stderr[-3000:]
    points = [line.split("\t")[1:] for line in log.read_text().splitlines()]
    return run, points


def crash_and_resume(rimrl, base, run: Path, n: int) -> int | None:
    """Kill the run at write ``n``, then finish it as a user would; returns the step of the
    commit the crash left (``None``: none yet)."""
    killed = rimrl(command(base, run), {CRASH_VARIABLE: str(n)})
    assert killed.returncode == -signal.SIGKILL, (n, killed.stderr[-3000:])
    committed = None
    if (run / "commit.json").is_file():
        commit = json.loads((run / "commit.json").read_text())
        committed = commit["step"] if commit["checkpoint"] else None
    if (run / "run.json").is_file():  # the run exists: resume it
        done = rimrl(["train", base[1], "--resume", str(run), "--quiet"])
    else:  # killed before it existed: the same command again
        done = rimrl(command(base, run))
    assert done.returncode == 0, (n, done.stdout[-2000:], done.stderr[-3000:])
    return committed


def rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [{k: v for k, v in row.items() if k not in CLOCKS}
            for row in csv.DictReader(io.StringIO(path.read_text()))]


def weights(path: Path) -> dict:
    """A model file's weights: an SB3 zip's policy, or a torch file's state dict."""
    if path.suffix == ".zip":
        import zipfile

        with zipfile.ZipFile(path) as archive:
            return torch.load(io.BytesIO(archive.read("policy.pth")), weights_only=True)
    state = torch.load(path, weights_only=True)
    return state["model"] if "model" in state else state


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def step_of(path: Path) -> int:
    return int(path.stem.split("_")[1])


def assert_whole(run: Path, ref: Path, committed: int | None, n: int, sb3: bool = True,
                 per_iteration: bool = True):
    """The checks of the module docstring, for the run killed at write ``n``."""
    assert not list(run.rglob(".*.tmp")), n
    assert json.loads((run / "commit.json").read_text())["step"] == \
        json.loads((ref / "commit.json").read_text())["step"], n
    ckpts = {step_of(p): p for p in list_checkpoints(run)}
    ref_ckpts = {step_of(p): p for p in list_checkpoints(ref)}
    assert sorted(ckpts) == sorted(ref_ckpts), n  # committed at the same iterations
    for step in ckpts:
        if committed is not None and step <= committed or not sb3:
            assert same(weights(ckpts[step]), weights(ref_ckpts[step])), (n, step)
    final = max(ref_ckpts)
    model = run / ("model.zip" if sb3 else "model.pt")
    assert same(weights(model), weights(ckpts[final])), n  # the final update is in it
    if not sb3:
        assert same(weights(model), weights(ref / "model.pt")), n
        mine, theirs = (json.loads((d / "results.json").read_text()) for d in (run, ref))
        assert mine["gaps"] == theirs["gaps"], n
        return
    got, want = rows(run / "tb" / "progress.csv"), rows(ref / "tb" / "progress.csv")
    step = "time/total_timesteps"

    def before(table):
        return [r for r in table if committed is not None and int(r[step]) <= committed]

    assert before(got) == before(want), n  # the committed rows, exactly
    later = [int(r[step]) for r in got[len(before(got)):]]
    assert later == sorted(later), n  # nothing logged twice
    if per_iteration:  # PPO logs each iteration (IQN each episode: restarted envs differ)
        assert [r[step] for r in got] == [r[step] for r in want], n
    evaluations, ref_evaluations = read_evaluations(run), read_evaluations(ref)
    assert [(r["step"], r["split"]) for r in evaluations] == [
        (r["step"], r["split"]) for r in ref_evaluations], n  # every evaluation once
    for ours, theirs in zip(evaluations, ref_evaluations):
        if committed is None or theirs["step"] > committed:
            break
        assert {k: v for k, v in ours.items() if k != "seconds"} == {
            k: v for k, v in theirs.items() if k != "seconds"}, n
    verify_checksum(run, run / "best_model.zip")
    best = max(evaluations, key=lambda r: r["return_mean"])  # the first of the best
    assert same(weights(run / "best_model.zip"), weights(ckpts[best["step"]])), n
    assert (run / "train_summary.json").is_file(), n


def check_crashes(rimrl, base, tmp_path: Path, choose) -> int:
    """Kill a run at each write point ``choose`` picks; returns how many writes it has."""
    ref, points = reference(rimrl, base, tmp_path)
    picked = choose(points)
    assert picked, points
    for n in picked:
        run = tmp_path / f"killed-{n}"
        committed = crash_and_resume(rimrl, base, run, n)
        assert_whole(run, ref, committed, n, sb3=base is not COPY, per_iteration=base is PPO)
    return len(points)


#: the writes whose cut is most likely to lose or double something: a torn progress row, the
#: evaluation rows and a staged best model without their commit, the commit record itself,
#: the best model's publication after it, and the final model after the last commit
KEY_WRITES = (("append", "progress.csv"), ("rename", "evaluations.csv"), ("rename", "best"),
              ("write", "commit.json"), ("publish", "best_model.zip"), ("write", "model.zip"))


def key_writes(points) -> list[int]:
    """The first write point of each of :data:`KEY_WRITES` after the run's first commit."""
    commits = [i for i, (label, path) in enumerate(points, 1)
               if label == "rename" and path.endswith("commit.json")]
    picked = []
    for label, prefix in KEY_WRITES:
        picked.append(next(i for i, (lab, path) in enumerate(points, 1)
                           if i > commits[1] and lab == label
                           and Path(path).name.startswith(prefix)))
    return picked


def test_ppo_killed_at_its_key_writes_resumes_whole(tmp_path, zygote):
    writes = check_crashes(zygote.run, PPO, tmp_path, key_writes)
    assert writes > 40  # the run does write: the count is recorded in RESULTS


@pytest.mark.slow
@pytest.mark.parametrize("base", [PPO, IQN, COPY], ids=["ppo", "iqn", "copy"])
def test_killed_at_every_write_resumes_whole(tmp_path, zygote, base):
    writes = check_crashes(zygote.run, base, tmp_path,
                           lambda points: list(range(1, len(points) + 1)))
    print(f"{base[1]}: {writes} write points, each killed and resumed whole")
