"""Evaluation during training (``--eval-every``): rows, TensorBoard tags, the best model,
resumes, the training it must not change, and its bad inputs."""


import pytest
import torch

from rimrl.cli import main
from rimrl.runs import EVAL_COLUMNS, read_evaluations, verify_checksum, write_evaluations
from tests.conftest import TINY_IQN
from tests.conftest import TINY, only_run

CUE = ["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "rims"]


def train(root, timesteps=256, every=64, extra=()):
    assert main(CUE + ["--timesteps", str(timesteps), "--runs-dir", str(root), "--eval-every",
                       str(every), "--set", "eval.episodes=4"] + TINY + list(extra)) == 0
    return only_run(root)


def test_rows_tags_and_best_model(tmp_path, capsys):
    """One row per evaluation at the end of the first rollout (64 steps) at or past each
    multiple of 64, plus none extra at the end (the last one is at the budget); the row is
    the training setting (``clean`` for an env without splits); intervals hold the rate."""
    run = train(tmp_path)
    rows = read_evaluations(run)
    assert [(r["step"], r["split"], r["episodes"]) for r in rows] == [
        (64, "clean", 4), (128, "clean", 4), (192, "clean", 4), (256, "clean", 4)]
    for r in rows:
        assert r["success_lo"] <= r["success_rate"] <= r["success_hi"]
        assert r["return_lo"] <= r["return_mean"] <= r["return_hi"]
        assert r["deterministic"] is False
    header = (run / "evaluations.csv").read_text().splitlines()[0]
    assert tuple(header.split(",")) == EVAL_COLUMNS
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    logged = events.Scalars("eval/clean/return_mean")
    assert [e.step for e in logged] == [r["step"] for r in rows]  # at the evaluation's step
    assert [e.value for e in logged] == pytest.approx([r["return_mean"] for r in rows])
    progress = (run / "tb" / "progress.csv").read_text().splitlines()[0]
    assert "eval/" not in progress  # one home for the numbers: evaluations.csv
    verify_checksum(run, run / "best_model.zip")  # recorded: evaluate --trust not needed
    out = capsys.readouterr().out
    assert "eval at 64 steps" in out and "clean success" in out


def test_evaluation_does_not_change_training(tmp_path):
    """Same seed, with and without evaluation: the same weights at the end (the evaluation's
    sampling draws from a set-aside random stream)."""
    with_eval = train(tmp_path / "a")
    assert main(CUE + ["--timesteps", "256", "--runs-dir", str(tmp_path / "b")] + TINY) == 0
    without = only_run(tmp_path / "b")
    from rimrl.learners.ppo import load_model

    pa = load_model(with_eval / "model.zip").policy.state_dict()
    pb = load_model(without / "model.zip").policy.state_dict()
    assert pa.keys() == pb.keys()
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


def test_resume_keeps_history_up_to_the_checkpoint(tmp_path):
    """Rows after the checkpoint a run resumes from are dropped and redone; earlier ones stay."""
    run = train(tmp_path, timesteps=128)
    kept = read_evaluations(run)
    orphan = dict(kept[-1], step=999)  # as if written after the last checkpoint, then killed
    write_evaluations(run, kept + [orphan])
    assert main(["train", "ppo", "--resume", str(run), "--timesteps", "256",
                 "--no-progress"]) == 0
    rows = read_evaluations(run)
    assert [r["step"] for r in rows] == [64, 128, 192, 256]
    assert rows[:2] == kept


def test_an_evaluation_lost_to_an_interruption_is_made_on_resume(tmp_path):
    """Killed after the checkpoint at 128 and before its evaluation was written: the resume
    evaluates at 128 (the checkpoint's weights) before training on, so no multiple of
    ``every`` goes without its row."""
    run = train(tmp_path, timesteps=128)
    kept = read_evaluations(run)
    assert [r["step"] for r in kept] == [64, 128]
    write_evaluations(run, kept[:1])
    assert main(["train", "ppo", "--resume", str(run), "--timesteps", "256",
                 "--no-progress"]) == 0
    rows = read_evaluations(run)
    assert [r["step"] for r in rows] == [64, 128, 192, 256]
    assert rows[1]["return_mean"] == kept[1]["return_mean"]  # same weights, same episodes


def test_splits_of_the_pickup_suite(tmp_path):
    """On pickup the first row is the split it trains on, then the requested ones."""
    assert main(["train", "ppo", "--env", "rimrl/Pickup-v0", "--core", "lstm", "--timesteps",
                 "64", "--runs-dir", str(tmp_path), "--eval-every", "64", "--set",
                 "eval.episodes=2", "--set", "eval.distractors=[novel, train]",
                 "--set", "policy.features_dim=16", "--set", "core.hidden_size=12",
                 "--set", "ppo.n_steps=32", "--set", "ppo.batch_size=32",
                 "--set", "ppo.chunk_length=8", "--n-envs", "2", "--no-progress"]) == 0
    rows = read_evaluations(only_run(tmp_path))
    assert [(r["step"], r["split"]) for r in rows] == [(64, "train"), (64, "novel")]


def test_iqn_evaluates_during_training(tmp_path):
    assert main(["train", "iqn", "--env", "CartPole-v1", "--encoder", "mlp", "--timesteps",
                 "120", "--runs-dir", str(tmp_path), "--eval-every", "100",
                 "--set", "eval.episodes=2"] + TINY_IQN) == 0
    rows = read_evaluations(only_run(tmp_path))
    assert [r["split"] for r in rows] == ["clean", "clean"]
    assert rows[0]["step"] >= 100 and rows[-1]["step"] == 120


@pytest.mark.parametrize("flags, message", [
    (["--eval-every", "-5"], "eval.every must be 0 (off) or a positive step count, got -5"),
    (["--eval-every", "64", "--set", "eval.episodes=0"], "eval.episodes must be between 1 and"),
    (["--eval-every", "64", "--set", "eval.distractors=[novel]"],
     "env 'rimrl/CueVector-v0' has no distractor splits"),
])
def test_bad_settings_are_refused_before_a_run_exists(tmp_path, capsys, flags, message):
    code = main(CUE + ["--timesteps", "64", "--runs-dir", str(tmp_path)] + TINY + flags)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_corrupt_history_is_refused_in_one_line(tmp_path):
    from rimrl.errors import UserError

    (tmp_path / "evaluations.csv").write_text("step,split\n12,train\n")
    with pytest.raises(UserError, match="evaluations.csv is corrupt"):
        read_evaluations(tmp_path)


def test_a_stop_during_an_evaluation_takes_effect_within_a_step(tmp_path):
    """A stop asked while an evaluation plays (Ctrl-C, SIGTERM) ends it at the next step,
    not after its last episode, and the abandoned evaluation writes no row."""
    from rimrl.sb3.environments import make_env
    from rimrl.sb3.evaluation import play
    from rimrl.sb3.periodic_evaluation import PeriodicEvaluation
    from rimrl.learners.ppo import load_model
    from rimrl.learners.base import saved_config
    from rimrl.learners import get

    run = train(tmp_path, timesteps=128)
    cfg = saved_config(get("ppo").config_class(), run)
    model = load_model(run / "model.zip")
    calls = []

    def stop_after_20_steps():
        calls.append(1)
        return len(calls) > 20

    episodes, _ = play(model, make_env(cfg, n_envs=1, training=False), 100_000,
                       stop_requested=stop_after_20_steps)
    assert len(calls) == 21 and len(episodes) <= 4  # CueVector episodes last 5 steps
    before = read_evaluations(run)
    cfg.eval.episodes = 100_000
    evaluation = PeriodicEvaluation(cfg, run, stop_after_20_steps)
    calls.clear()
    assert evaluation.evaluate(model) is None and len(calls) <= 23  # abandoned: no best
    assert read_evaluations(run) == before
