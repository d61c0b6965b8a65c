"""``rimrl sweep``: sweep files, trial planning and states, a local Ray sweep with a failing
trial, resuming an interrupted sweep, the missing-extra message."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from rimrl.cli import main
from rimrl.sweeps.plan import load_sweep, plan_trials, trial_commands

TINY = {"env.id": "rimrl/CueVector-v0", "train.timesteps": 128,
        "train.checkpoint_every": 64, "env.n_envs": 2, "ppo.n_steps": 32,
        "ppo.batch_size": 32, "ppo.chunk_length": 8, "ppo.n_epochs": 1,
        "core.name": "lstm", "core.hidden_size": 12, "policy.features_dim": 16}


def sweep_file(tmp_path, **changes):
    data = {"command": "ppo", "name": "t", "runs_dir": str(tmp_path / "sweeps"),
            "grid": {"seed": [0, 1]}, "overrides": dict(TINY), "resources": {"cpu": 1},
            "evaluate": {"episodes": 2}}
    data.update(changes)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_trials_are_the_grid_product_with_named_run_dirs(tmp_path):
    sweep = load_sweep(sweep_file(tmp_path, grid={"core.name": ["lstm", "rims"],
                                                  "seed": [0, 1, 2]}))
    trials = plan_trials(sweep)
    assert [t.name for t in trials][:3] == ["core.name=lstm,seed=0", "core.name=lstm,seed=1",
                                            "core.name=lstm,seed=2"]
    assert len(trials) == 6 and all(t.status == "new" for t in trials)
    assert trials[0].run_dir == (tmp_path / "sweeps" / "t" / "core.name=lstm,seed=0").resolve()
    train, evaluate = trial_commands(trials[4], sweep)
    assert train[:4] == ["train", "ppo", "--run-dir", str(trials[4].run_dir)]
    assert "core.name=rims" in train and "seed=1" in train  # grid values win
    assert evaluate == ["evaluate", str(trials[4].run_dir), "--episodes", "2"]


def test_example_sweep_reproduces_the_thesis_design():
    from rimrl.config import config_dir

    sweep = load_sweep(config_dir() / "sweeps" / "atari_rims_vs_lstm.yaml")
    assert sweep.grid["core.name"] == ["lstm", "rims"] and sweep.grid["seed"] == [0, 1, 2]
    assert len(plan_trials(sweep)) == len(sweep.grid["env.id"]) * 6


@pytest.mark.parametrize("changes,message", [
    ({"gird": {"seed": [0]}}, "unknown config key 'gird'; did you mean 'grid'"),
    ({"grid": {}}, "grid is empty"),
    ({"command": "dqn"}, "sweep command 'dqn' is not one of: ppo, iqn"),
    ({"grid": {"core.name": ["lstm", "rnn"]}}, "trial core.name=rnn: unknown core 'rnn'"),
    ({"grid": {"ppo.batch": [8]}}, "did you mean 'ppo.batch_size'"),
    ({"grid": {"seed": 3}}, "grid key 'seed' must be a list of values"),
    ({"grid": {"ppo.learning_rate": [float("inf")]}}, "must be a finite number"),
    # what rimrl train would refuse, --dry-run refuses too
    ({"grid": {"policy.encoder": ["nature"]}}, "cannot read rimrl/CueVector-v0's observations"),
    ({"grid": {"core.hidden_size": [10_000_000]}}, "core.hidden_size 10000000 needs"),
    ({"grid": {"device": ["tpu"]}}, "device 'tpu'"),
    ({"evaluate": {"episodes": 2, "distractors": ["bogus"]}}, "rimrl/CueVector-v0"),
    # round 3's hostile inputs: two trials in one folder, an evaluation of nothing
    ({"grid": {"seed": [0, 1, 0]}}, "grid key 'seed' lists 0 twice"),
    ({"grid": {"env.id": ["a b", "a-b"]}}, "two values that name the same trial folder"),
    ({"evaluate": {"episodes": 0}}, "evaluate.episodes must be at least 1, got 0"),
])
def test_bad_sweep_files_one_line_exit_2_and_nothing_written(tmp_path, capsys, changes,
                                                             message):
    for dry in ([], ["--dry-run"]):
        assert main(["sweep", str(sweep_file(tmp_path, **changes))] + dry) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
        assert "Traceback" not in err
        assert not (tmp_path / "sweeps").exists()


def test_a_runs_dir_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "taken").write_text("mine\n")
    path = sweep_file(tmp_path, runs_dir=str(tmp_path / "taken" / "below"))
    assert main(["sweep", str(path), "--dry-run"]) == 2
    assert "is a file (or lies under one" in capsys.readouterr().err
    assert (tmp_path / "taken").read_text() == "mine\n"


def test_a_huge_grid_is_listed_lazily_and_each_setting_checked_once(tmp_path, capsys,
                                                                     monkeypatch):
    """300 x 300 trials: --dry-run lists the first ones, counts the rest and checks each of
    the 600 distinct values once, not 90,000 configs."""
    from rimrl.learners.ppo import PPOLearner

    checked = []
    real = PPOLearner.check
    monkeypatch.setattr(PPOLearner, "check", lambda self, cfg: (checked.append(cfg.seed),
                                                                real(self, cfg)))
    grid = {"seed": list(range(300)), "ppo.learning_rate": [1e-4 * (i + 1) for i in range(300)]}
    assert main(["sweep", str(sweep_file(tmp_path, grid=grid)), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("sweep t: 90000 trials in ")
    assert out[1].startswith("  ppo.learning_rate=0.0001,seed=0: new -> rimrl train ppo")
    assert "  ... and 89950 more" in out and out[-1].startswith("checked 599 distinct")
    assert len(checked) == 599 and sorted(set(checked)) == list(range(300))
    assert not (tmp_path / "sweeps").exists()


def test_missing_ray_is_a_one_line_message(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["sweep", str(sweep_file(tmp_path))]) == 2
    assert "needs Ray Tune, an optional extra: pip install" in capsys.readouterr().err


def test_local_sweep_failure_isolation_and_resume(tmp_path, capsys):
    pytest.importorskip("ray")
    # a learning rate of 1e12 diverges at run time, in the worker (exit 3)
    path = sweep_file(tmp_path, grid={"ppo.learning_rate": [0.0003, 1e12, 0.001]})
    assert main(["sweep", str(path), "--num-cpus", "2"]) == 1
    out = capsys.readouterr()
    root = tmp_path / "sweeps" / "t"
    status = {t["name"]: t for t in json.loads((root / "sweep.json").read_text())["trials"]}
    assert status["ppo.learning_rate=0.0003"]["status"] == "done"
    assert status["ppo.learning_rate=0.001"]["status"] == "done"
    assert status["ppo.learning_rate=1000000000000.0"]["status"] == "failed"
    reason = status["ppo.learning_rate=1000000000000.0"]["error"]
    assert reason.startswith("rimrl: error: training diverged")
    assert f"ppo.learning_rate=1000000000000.0: failed FAILED: {reason}" in out.out
    assert "1 of 3 trials failed" in out.err
    log = (root / "ppo.learning_rate=1000000000000.0" / "trial.log").read_text()
    assert "$ rimrl train ppo" in log and "run directory:" in log  # the whole output
    assert log.strip().splitlines()[-1].strip()[:300] == reason
    for name in ("0.0003", "0.001"):
        run = root / f"ppo.learning_rate={name}"
        assert (run / "evaluation.json").is_file() and (run / "model.zip").is_file()

    # interrupt the mlp trial after its first commit: the later files never got written
    from tests.test_cli_ppo import killed_after_the_commit_at

    mlp = root / "ppo.learning_rate=0.0003"
    killed_after_the_commit_at(mlp, 64)
    (mlp / "evaluation.json").unlink()
    flatten_model = (root / "ppo.learning_rate=0.001" / "model.zip").stat().st_mtime_ns
    sweep = load_sweep(path)
    assert [t.status for t in plan_trials(sweep)] == ["interrupted", "failed", "done"]
    assert main(["sweep", str(path), "--num-cpus", "2"]) == 1  # 1e12 diverges again
    log = (mlp / "trial.log").read_text()
    assert f"$ rimrl train ppo --resume {mlp.resolve()}" in log
    assert "resuming at 64 steps" in log
    assert json.loads((mlp / "train_summary.json").read_text())["timesteps"] == 128
    assert (root / "ppo.learning_rate=0.001" / "model.zip").stat().st_mtime_ns == flatten_model
    # the sweep's runs are ordinary run directories: compare reads them
    capsys.readouterr()
    assert main(["compare", str(root), "--reps", "20"]) == 0
    out = capsys.readouterr().out
    assert "2 runs" in out and "left out 1 diverged run(s): ppo.learning_rate=1000000000000.0" in out


@pytest.mark.slow
def test_sweep_joins_an_existing_ray_cluster(tmp_path, capsys):
    """``--address auto`` joins a Ray head started outside rimrl (~40 s). Its clean-up, ``ray
    stop``, stops every Ray on the machine: do not run it beside another sweep."""
    import subprocess

    pytest.importorskip("ray")
    subprocess.run(["ray", "start", "--head", "--num-cpus", "2", "--include-dashboard=false"],
                   check=True, capture_output=True)
    try:
        assert main(["sweep", str(sweep_file(tmp_path)), "--address", "auto"]) == 0
    finally:
        subprocess.run(["ray", "stop"], capture_output=True)
    root = tmp_path / "sweeps" / "t"
    trials = json.loads((root / "sweep.json").read_text())["trials"]
    assert [t["status"] for t in trials] == ["done", "done"]


def test_orphaned_ray_processes_of_a_killed_driver_are_stopped(tmp_path):
    """A re-run after kill -9 of the driver stops the Ray processes it left (raylet, GCS);
    while the recorded driver still runs, nothing is touched."""
    from rimrl.runs import RAY_PROCESSES
    from rimrl.sweeps.ray_runner import stop_orphaned_ray

    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)  # raylet"])
    driver = subprocess.Popen([sys.executable, "-c", "pass"])
    driver.wait()  # a driver that died
    try:
        alive_driver = os.getpid()
        (tmp_path / RAY_PROCESSES).write_text(
            json.dumps({"driver": alive_driver, "pids": [orphan.pid]}))
        assert stop_orphaned_ray(tmp_path) == [] and orphan.poll() is None
        (tmp_path / RAY_PROCESSES).write_text(
            json.dumps({"driver": driver.pid, "pids": [orphan.pid]}))
        assert stop_orphaned_ray(tmp_path) == [orphan.pid]
        assert orphan.wait(timeout=10) is not None
        assert not (tmp_path / RAY_PROCESSES).exists()
    finally:
        orphan.kill()


def test_a_retried_trial_resumes_its_run_instead_of_starting_it(tmp_path):
    """A retry (Ray after a lost node) runs the trial's planned commands again: once the run
    exists, its ``train --run-dir`` becomes ``train --resume``; other commands stay."""
    from rimrl.sweeps.ray_runner import attempt_commands

    run = tmp_path / "trial"
    planned = [["train", "ppo", "--run-dir", str(run), "--no-progress", "--set", "seed=1"],
               ["evaluate", str(run), "--episodes", "2"]]
    assert attempt_commands(planned, run) == planned  # nothing there yet: as planned
    run.mkdir()
    (run / "run.json").write_text("{}")
    assert attempt_commands(planned, run) == [
        ["train", "ppo", "--resume", str(run), "--no-progress"], planned[1]]
