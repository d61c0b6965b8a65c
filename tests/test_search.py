"""``rimrl sweep`` with a ``search:`` section: the search file's checks, the sampled
dimensions, the scores a trial reports, a trial the scheduler stops, the best config, and
(slow) a whole search on Ray with early stopping and its re-run."""

import json

import pytest
import yaml

from rimrl.cli import main
from rimrl.errors import UserError
from rimrl.sweeps.search import Dimension, best_overrides, committed_scores, write_best_config
from rimrl.sweeps.tuning import rungs
from tests.test_sweep import TINY, sweep_file

BASE = {**{k: v for k, v in TINY.items() if k != "core.hidden_size"},
        "train.timesteps": 256, "eval.every": 64, "eval.episodes": 4}
SPACE = {"ppo.learning_rate": {"loguniform": [1.0e-4, 1.0e-2]},
         "core.hidden_size": {"choice": [8, 12, 16]}}


def search_file(tmp_path, search=None, **changes):
    data = {"command": "ppo", "name": "s", "runs_dir": str(tmp_path / "sweeps"),
            "overrides": dict(BASE), "resources": {"cpu": 1},
            "search": {"space": SPACE, "split": "clean", "measure": "return_mean",
                       "trials": 3, "reduction_factor": 2, **(search or {})}}
    data.update(changes)
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("search, changes, message", [
    ({"space": {"ppo.learning_rate": {"logarithmic": [1, 2]}}}, {},
     "unknown kind 'logarithmic'; use one of uniform, loguniform, int, choice"),
    ({"space": {"ppo.learning_rate": {"loguniform": [0, 1e-3]}}}, {}, "loguniform needs low > 0"),
    ({"space": {"ppo.learning_rate": {"uniform": [1e-3, 1e-4]}}}, {}, "must be below high"),
    ({"space": {"core.hidden_size": {"int": [8, 12.5]}}}, {}, "two integers"),
    ({"space": {"core.hidden_size": {"choice": [8, 8]}}}, {}, "lists a value twice"),
    ({"space": {"core.hidden_size": [8, 12]}}, {}, "must be one of uniform"),
    ({"space": {}}, {}, "search.space is empty"),
    ({"space": {"train.timesteps": {"choice": [64, 128]}}}, {}, "cannot hold train.timesteps"),
    ({"measure": "score"}, {}, "search.measure 'score' is not one of"),
    ({"scheduler": "hyperband"}, {}, "search.scheduler 'hyperband' is not one of: asha, none"),
    ({"trials": 0}, {}, "search.trials must be at least 1"),
    ({}, {"grid": {"seed": [0, 1]}}, "a grid or a search, not both"),
    ({}, {"overrides": {**BASE, "core.hidden_size": 8}}, "core.hidden_size is both in"),
    # what training refuses at one edge, and metrics the trials would never report
    ({"space": {"core.hidden_size": {"int": [8, 10_000_000]}}}, {},
     "core.hidden_size=10000000: core.hidden_size 10000000 needs"),
    ({"split": "novel"}, {}, "search.split 'novel' is not evaluated during training; the rows "
                             "are: clean"),
    ({}, {"overrides": {**BASE, "eval.every": 0}}, "a search needs evaluations during training"),
    ({}, {"overrides": {**BASE, "eval.every": 512}}, "eval.every (512) is past train.timesteps"),
])
def test_bad_search_files_one_line_exit_2_and_nothing_written(tmp_path, capsys, search,
                                                              changes, message):
    # a run checks what --dry-run checks (the same function, tested once per kind of check)
    runs = [["--dry-run"]] + ([[]] if message.startswith(("unknown kind", "core.hidden_size=",
                                                          "search.split")) else [])
    for dry in runs:
        assert main(["sweep", str(search_file(tmp_path, search, **changes))] + dry) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "sweeps").exists()


def test_dry_run_describes_the_search_and_checks_every_edge(tmp_path, capsys, monkeypatch):
    """Each edge once: the first setting, the range's other end, the two other choices."""
    import importlib.util

    from rimrl.learners.ppo import PPOLearner

    checked = []
    real = PPOLearner.check
    monkeypatch.setattr(PPOLearner, "check", lambda self, cfg: (
        checked.append((cfg.ppo.learning_rate, cfg.core.hidden_size)), real(self, cfg)))
    assert main(["sweep", str(search_file(tmp_path)), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("search s: 3 trials by Optuna's TPE, each up to 256 steps, "
                             "maximising clean/return_mean; ASHA stops trials at 64, 128 steps "
                             "(top 1/2 go on); in ")
    assert out[1:3] == ["  ppo.learning_rate: loguniform [0.0001, 0.01]",
                        "  core.hidden_size: choice [8, 12, 16]"]
    assert out[3].startswith("checked 4 distinct settings")
    assert checked == [(1e-4, 8), (1e-2, 8), (1e-4, 12), (1e-4, 16)]
    assert not (tmp_path / "sweeps").exists()
    # without Optuna the sampler falls back to random sampling, and says so
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "optuna" else real_find(name, *a))
    assert main(["sweep", str(search_file(tmp_path, {"scheduler": "none"})), "--dry-run"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "3 trials by random sampling (Optuna is not installed: pip install optuna" in first
    assert "no early stopping" in first


def test_the_shipped_pickup_search_checks(capsys):
    from rimrl.config import config_dir

    assert main(["sweep", str(config_dir() / "sweeps" / "pickup_rims_search.yaml"),
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "9 trials by Optuna's TPE, each up to 300,000 steps, maximising " \
           "train/success_rate; ASHA stops trials at 100,000 steps" in out
    assert "checked 5 distinct settings" in out


def test_dimensions_sample_within_their_edges():
    tune = pytest.importorskip("ray.tune")
    ints = Dimension.parse("core.num_units", {"int": [2, 4]}).domain(tune)
    assert {ints.sample() for _ in range(300)} == {2, 3, 4}  # both ends included
    logs = Dimension.parse("lr", {"loguniform": [1e-4, 1e-2]}).domain(tune)
    values = [logs.sample() for _ in range(2000)]
    assert all(1e-4 <= v <= 1e-2 for v in values)
    assert 0.4 < sum(v < 1e-3 for v in values) / len(values) < 0.6  # the log's midpoint
    choice = Dimension.parse("core.name", {"choice": ["lstm", "rims"]}).domain(tune)
    assert {choice.sample() for _ in range(100)} == {"lstm", "rims"}


def test_rungs_are_grace_times_powers_of_the_factor_below_the_budget():
    assert rungs(50_000, 3, 1_000_000) == [50_000, 150_000, 450_000]
    assert rungs(64, 2, 256) == [64, 128]
    assert rungs(300, 2, 256) == []


def test_only_committed_evaluations_are_reported_one_result_per_step():
    row = dict(episodes=4, deterministic=False, success_lo=0.0, success_hi=1.0, return_lo=0.0,
               return_hi=1.0, seconds=1.0)
    rows = [dict(row, step=64, split="train", success_rate=0.25, return_mean=0.2),
            dict(row, step=64, split="novel", success_rate=0.5, return_mean=0.4),
            dict(row, step=128, split="train", success_rate=0.75, return_mean=0.7),
            dict(row, step=128, split="novel", success_rate=1.0, return_mean=0.9),
            dict(row, step=192, split="train", success_rate=1.0, return_mean=1.0)]
    assert committed_scores(rows, 4, after=0) == [
        {"timesteps": 64, "train/success_rate": 0.25, "train/return_mean": 0.2,
         "novel/success_rate": 0.5, "novel/return_mean": 0.4},
        {"timesteps": 128, "train/success_rate": 0.75, "train/return_mean": 0.7,
         "novel/success_rate": 1.0, "novel/return_mean": 0.9}]
    assert committed_scores(rows, 4, after=64) == committed_scores(rows, 4, 0)[1:]
    assert committed_scores(rows, 5, after=128)[0]["timesteps"] == 192  # once committed


def test_the_best_config_file_trains_the_trial_again(tmp_path):
    """``rimrl train --config best_config.yaml`` loads the trial's very config."""
    from rimrl.config import to_dict
    from rimrl.learners.ppo import PPOLearner
    from rimrl.sweeps.plan import Trial, load_sweep

    sweep = load_sweep(search_file(tmp_path))
    values = {"ppo.learning_rate": 0.000123456789, "core.hidden_size": 12}
    path = tmp_path / "best.yaml"
    write_best_config(path, best_overrides(sweep.overrides, values), "best of s: trial-1\nx")
    assert path.read_text().startswith("# best of s: trial-1\n# x\n")
    learner = PPOLearner()
    trial = learner.load_config(Trial("t", values, tmp_path).overrides(sweep))
    best = learner.load_config([], extra_file=path)
    assert to_dict(best) == to_dict(trial)
    assert best.ppo.learning_rate == 0.000123456789 and best.core.hidden_size == 12


def test_a_changed_search_is_refused_on_rerun(tmp_path):
    from rimrl.runs import SEARCH_RECORD
    from rimrl.sweeps.plan import load_sweep
    from rimrl.sweeps.search import check_unchanged, search_record

    sweep = load_sweep(search_file(tmp_path))
    assert check_unchanged(sweep) is None  # a new search
    sweep.root.mkdir(parents=True)
    (sweep.root / SEARCH_RECORD).write_text(yaml.safe_dump(search_record(sweep)))
    assert check_unchanged(sweep) is not None  # the same one
    changed = load_sweep(search_file(tmp_path, {"trials": 5}))
    with pytest.raises(UserError, match="was started with other settings"):
        check_unchanged(changed)


def test_a_trial_stopped_by_the_scheduler_reports_its_scores_and_stops_with_a_checkpoint(
        tmp_path, monkeypatch):
    """The trial reports each committed evaluation; Tune stopping it (an exception out of
    ``report``) stops its training as Ctrl-C does: a resumable run, checkpoint at a commit."""
    tune = pytest.importorskip("ray.tune")
    from rimrl.commits import read_commit
    from rimrl.learners.ppo import PPOLearner
    from rimrl.runs import read_evaluations
    from rimrl.sweeps import tuning
    from rimrl.sweeps.plan import load_sweep

    class Stop(Exception):
        pass

    reports = []

    def report(result):
        reports.append(result)
        if len(reports) == 2:
            raise Stop  # what Tune's session does to a trial it stops

    class Context:
        def get_trial_id(self):
            return "abc_00007"

    monkeypatch.setattr(tune, "report", report)
    monkeypatch.setattr(tune, "get_context", lambda: Context())
    overrides = {**BASE, "train.timesteps": 100_000, "core.hidden_size": 8}
    sweep = load_sweep(search_file(tmp_path, overrides=overrides,
                                   search={"space": {"ppo.learning_rate": SPACE[
                                       "ppo.learning_rate"]}}))
    with pytest.raises(Stop):
        tuning.search_trial({"ppo.learning_rate": 0.001}, sweep)
    run = sweep.root / "trial-00007"
    rows = read_evaluations(run)
    assert reports[0] == {"timesteps": 64, "clean/success_rate": rows[0]["success_rate"],
                          "clean/return_mean": rows[0]["return_mean"]}
    assert reports[1]["timesteps"] == 128
    commit = read_commit(run)
    assert 128 <= commit.step < 100_000 and (run / "checkpoints" / commit.checkpoint).is_file()
    assert "interrupted at" in (run / "trial.log").read_text()  # SIGTERM, not a kill
    assert not PPOLearner().finished(run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["ppo"]["learning_rate"] == 0.001


@pytest.mark.slow
def test_a_search_on_ray_stops_weak_trials_and_writes_a_best_config_that_trains(tmp_path,
                                                                                 capsys):
    """Five sampled trials, one at a time, ASHA on the clean return: some stop early as
    resumable runs marked pruned; the best config trains; a re-run restores the finished
    search and changes nothing (~5 min)."""
    pytest.importorskip("ray")
    # hidden sizes from 4 to 32: different initial policies, so the returns at a rung differ
    space = {"ppo.learning_rate": SPACE["ppo.learning_rate"], "core.hidden_size": {"int": [4, 32]}}
    # runs long enough (20k steps, ~20 s) that a stop at a rung finds them still training
    overrides = {**BASE, "train.timesteps": 20480, "train.checkpoint_every": 2048,
                 "eval.every": 2048, "eval.episodes": 20}
    path = search_file(tmp_path, {"trials": 5, "algorithm": "random", "seed": 0, "space": space},
                       overrides=overrides, max_concurrent=1)
    code = main(["sweep", str(path), "--num-cpus", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    root = tmp_path / "sweeps" / "s"
    status = json.loads((root / "sweep.json").read_text())
    states = [t["status"] for t in status["trials"]]
    assert len(states) == 5 and "pruned" in states and "done" in states, status
    for t in status["trials"]:
        run = root / t["name"]
        assert (run / "config.yaml").is_file()
        assert (run / "trial_pruned.txt").is_file() == (t["status"] == "pruned")
        assert (run / "model.zip").is_file() == (t["status"] == "done")
    best = max((t for t in status["trials"] if t["status"] == "done"), key=lambda t: t["metric"])
    assert status["best"] == best["name"] and f"best: {best['name']}" in out
    # the best config trains, and gives the best trial's config
    assert main(["train", "ppo", "--config", str(root / "best_config.yaml"),
                 "--run-dir", str(tmp_path / "again"), "--no-progress"]) == 0
    assert (yaml.safe_load((tmp_path / "again" / "config.yaml").read_text())
            == yaml.safe_load((root / best["name"] / "config.yaml").read_text()))
    # a re-run restores the finished search: nothing trains again
    stamp = (root / best["name"] / "model.zip").stat().st_mtime_ns
    assert main(["sweep", str(path), "--num-cpus", "2"]) == 0
    assert (root / best["name"] / "model.zip").stat().st_mtime_ns == stamp
    assert json.loads((root / "sweep.json").read_text())["best"] == best["name"]


@pytest.mark.parametrize("kind", ["grid", "search"])
def test_retries_is_the_number_of_times_ray_restarts_a_lost_trial(tmp_path, monkeypatch, kind):
    """The sweep file's ``retries`` reaches Ray's failure config (a lost node's trial is
    retried; tests/test_cluster.py shows it on two nodes); negative is refused."""
    import contextlib

    tune = pytest.importorskip("ray.tune")
    from rimrl.sweeps import ray_runner, tuning
    from rimrl.sweeps.plan import load_sweep, plan_trials

    seen = {}

    class Tuner:
        def __init__(self, trainable, **kwargs):
            seen.update(kwargs)

        def fit(self):
            return []

    monkeypatch.setattr(tune, "Tuner", Tuner)
    for module in (ray_runner, tuning):
        monkeypatch.setattr(module, "ray_started", lambda *a: contextlib.nullcontext())
    if kind == "grid":
        sweep = load_sweep(sweep_file(tmp_path, retries=5))
        ray_runner.run_on_ray(sweep, plan_trials(sweep), lambda argv: 0, show=False)
    else:
        sweep = load_sweep(search_file(tmp_path, retries=5))
        tuning.run_search(sweep, show=False)
    assert seen["run_config"].failure_config.max_failures == 5
    with pytest.raises(UserError, match="retries must not be negative"):
        load_sweep(search_file(tmp_path, retries=-1))


@pytest.mark.slow
def test_a_search_whose_driver_was_killed_resumes_where_it_stopped(tmp_path, capsys):
    """kill -9 of ``rimrl sweep`` mid-search (its trials die with their Ray workers); the
    re-run restores the search from its Ray state, resumes the interrupted trial's run from
    its checkpoint and finishes every trial (~3 min)."""
    import signal
    import subprocess
    import sys
    import time

    pytest.importorskip("ray")
    from rimrl.commits import read_commit

    overrides = {**BASE, "train.timesteps": 2048, "eval.every": 512}
    path = search_file(tmp_path, {"trials": 2, "algorithm": "random", "scheduler": "none",
                                  "space": {"ppo.learning_rate": SPACE["ppo.learning_rate"]}},
                       overrides=overrides, max_concurrent=1)
    root = tmp_path / "sweeps" / "s"
    driver = subprocess.Popen([sys.executable, "-m", "rimrl", "sweep", str(path),
                               "--num-cpus", "2"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline, first = time.monotonic() + 300, None
    while first is None and time.monotonic() < deadline:
        time.sleep(0.5)
        for run in root.glob("trial-*"):
            try:
                commit = read_commit(run)
            except Exception:  # mid-write: look again
                continue
            if commit is not None and commit.step > 0:
                first = run
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert first is not None, "no trial reached a checkpoint"
    assert main(["sweep", str(path), "--num-cpus", "2"]) == 0
    status = json.loads((root / "sweep.json").read_text())
    assert [t["status"] for t in status["trials"]] == ["done", "done"]
    log = (first / "trial.log").read_text()
    assert f"--resume {first.resolve()}" in log and "resuming at" in log
    assert len(list(root.glob("trial-*"))) == 2 and (root / "best_config.yaml").is_file()
