"""``rimrl train iqn`` / ``rimrl evaluate`` on a tiny fake image env and budget."""

import json

import pytest

from rimrl.cli import main
from rimrl.runs import list_checkpoints
from tests.conftest import TINY_IQN as TINY, only_run

def test_train_resume_with_replay_and_evaluate(tmp_path, capsys):
    args = ["train", "iqn", "--env", "rimrl/CueImage-v0", "--runs-dir", str(tmp_path),
            "--set", "train.save_replay=true", "--set", "iqn.n_step_return=2"] + TINY
    assert main(args + ["--timesteps", "200"]) == 0
    run = only_run(tmp_path)
    assert json.loads((run / "run.json").read_text())["kind"] == "iqn"
    # checkpoints close whole iterations (8 steps: 4 per env): the first one at or past 100
    assert [p.name for p in list_checkpoints(run)] == ["ckpt_000000000104.zip",
                                                      "ckpt_000000000200.zip"]
    # the commit holds the replay memory of its checkpoint's step, and no other
    assert sorted(p.name for p in (run / "checkpoints").glob("replay_*")) == [
        "replay_000000000200.npz"]
    assert json.loads((run / "commit.json").read_text())["replay"] == "replay_000000000200.npz"
    assert "train/loss" in (run / "tb" / "progress.csv").read_text()
    capsys.readouterr()
    assert main(["train", "iqn", "--resume", str(run), "--timesteps", "300",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "replay memory restored: 100 steps per env" in out  # 200 steps over 2 envs
    assert "resuming at 200 steps" in out
    assert json.loads((run / "train_summary.json").read_text())["timesteps"] >= 300
    assert main(["evaluate", str(run), "--episodes", "3", "--deterministic"]) == 0
    result = json.loads((run / "evaluation.json").read_text())
    assert result["encoder"] == "nature" and result["episodes"] == 3


def test_a_replay_memory_from_another_step_is_set_aside(tmp_path, capsys):
    """A memory that does not belong to its checkpoint (a run from before commit records,
    killed between the two writes) is set aside with a warning and refilled instead of
    paired silently; a memory with NaN priorities is refused in one line and the run is not
    marked diverged."""
    import numpy as np

    args = ["train", "iqn", "--env", "rimrl/CueImage-v0", "--runs-dir", str(tmp_path),
            "--set", "train.save_replay=true"] + TINY
    assert main(args + ["--timesteps", "200"]) == 0
    run = only_run(tmp_path)
    replay = run / "checkpoints" / "replay_000000000200.npz"
    state = dict(np.load(replay))
    assert int(state["step"]) == 200
    (run / "train_summary.json").unlink()  # as if killed before the final save
    bad = dict(state, tree_nodes=np.full_like(state["tree_nodes"], np.nan))
    np.savez(replay, **bad)
    capsys.readouterr()
    assert main(["train", "iqn", "--resume", str(run), "--timesteps", "300",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "replay_000000000200.npz is corrupt (ValueError: replay priorities" in err
    assert not (run / "train_summary.json").exists()
    np.savez(replay, **dict(state, step=np.array(100)))
    assert main(["train", "iqn", "--resume", str(run), "--timesteps", "300",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "the replay memory is from step 100, the model from step 200" in out
    assert "resuming with an empty replay memory" in out
    assert json.loads((run / "train_summary.json").read_text())["timesteps"] >= 300


@pytest.mark.parametrize("switch", ["iqn.prioritized=false", "iqn.double_q=false",
                                    "policy.dueling=false", "policy.noisy=true",
                                    "iqn.n_step_return=1"])
def test_each_rainbow_component_switches_from_the_config(tmp_path, switch):
    assert main(["train", "iqn", "--env", "rimrl/CueImage-v0", "--runs-dir", str(tmp_path),
                 "--timesteps", "100", "--set", switch] + TINY) == 0
    text = (only_run(tmp_path) / "config.yaml").read_text()
    key, value = switch.split("=")
    assert f"{key.split('.')[1]}: {value}" in text


def test_nfm_resnet_encoder_from_the_cli(tmp_path):
    assert main(["train", "iqn", "--env", "rimrl/CueImage-v0", "--encoder", "nfm-resnet",
                 "--runs-dir", str(tmp_path), "--timesteps", "60",
                 "--set", "policy.encoder_kwargs={channels: [4, 4], passes: 2, top_k: 2}"]
                + TINY) == 0


@pytest.mark.parametrize("extra,message", [
    (["--encoder", "nfm-resnt"], "did you mean 'nfm-resnet'"),
    (["--set", "iqn.kappa=0"], "iqn.kappa must be positive"),
    (["--set", "iqn.alpha=2"], "iqn.alpha must be in [0, 1]"),
    (["--set", "iqn.double=true"], "did you mean 'iqn.double_q'"),
    (["--set", "policy.encoder_kwargs={topk: 2}"], "takes no argument 'topk'"),
    (["--env", "MsPacmn"], "unknown env 'MsPacmn'"),
    (["--env", "BabyAI-GoToObj-v0"], "IQN takes image or vector observations"),
])
def test_bad_input_one_line_exit_2_and_no_run_dir(tmp_path, capsys, extra, message):
    code = main(["train", "iqn", "--env", "rimrl/CueImage-v0", "--runs-dir", str(tmp_path)]
                + extra + TINY)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_corrupt_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "iqn", "--env", "rimrl/CueImage-v0", "--runs-dir", str(tmp_path),
                 "--timesteps", "100"] + TINY) == 0
    run = only_run(tmp_path)
    list_checkpoints(run)[-1].write_bytes(b"not a zip")
    capsys.readouterr()
    assert main(["train", "iqn", "--resume", str(run), "--timesteps", "200",
                 "--no-progress"]) == 2
    assert "differs from the file rimrl wrote" in capsys.readouterr().err
    assert main(["train", "iqn", "--resume", str(run), "--timesteps", "200",
                 "--no-progress", "--trust"]) == 2
    assert "is corrupt or not a rimrl IQN model" in capsys.readouterr().err


def test_run_dir_names_the_run_and_is_never_reused(tmp_path, capsys):
    run = tmp_path / "my-run"
    args = ["train", "iqn", "--env", "rimrl/CueImage-v0", "--timesteps", "40",
            "--run-dir", str(run)] + TINY
    assert main(args) == 0
    assert (run / "model.zip").is_file()
    before = (run / "model.zip").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 2
    assert "already holds a run; continue it with --resume" in capsys.readouterr().err
    assert (run / "model.zip").stat().st_mtime_ns == before


def test_divergence_stops_with_the_last_finite_checkpoint(tmp_path, capsys):
    """The reliability report's case: lr 1e12 turns the weights to NaN. Training stops with
    exit 3 and one line naming the step; no non-finite model or checkpoint is written; the
    finite checkpoint before it is kept; evaluate runs on that one."""
    import torch

    from rimrl.sb3.callbacks import non_finite_parameter
    from rimrl.agents.iqn import IQN

    code = main(["train", "iqn", "--env", "rimrl/CueImage-v0", "--timesteps", "400",
                 "--runs-dir", str(tmp_path), "--set", "iqn.prioritized=false",
                 "--set", "iqn.learning_rate=1e12"] + TINY
                + ["--set", "train.checkpoint_every=20"])  # checkpoints before it diverges
    assert code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training diverged" in err[0] and "at step" in err[0]
    run = only_run(tmp_path)
    assert not (run / "model.zip").exists()
    summary = json.loads((run / "train_summary.json").read_text())
    checkpoints = list_checkpoints(run)
    assert checkpoints and "diverged" in summary and summary["last_finite_checkpoint"] == checkpoints[-1].name
    for path in checkpoints:
        assert non_finite_parameter(IQN.load(path, device="cpu").policy) is None
    assert main(["evaluate", str(run), "--episodes", "2"]) == 0
    # a NaN model written by an older version is refused in one line
    model = IQN.load(checkpoints[-1], device="cpu")
    with torch.no_grad():
        next(model.policy.parameters()).fill_(float("nan"))
    model.save(run / "model.zip")
    capsys.readouterr()
    assert main(["evaluate", str(run), "--episodes", "2", "--trust"]) == 2
    assert "non-finite weights" in capsys.readouterr().err


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_non_finite_numbers_are_refused(tmp_path, capsys, value):
    assert main(["train", "iqn", "--env", "rimrl/CueImage-v0", "--runs-dir", str(tmp_path),
                 "--set", f"iqn.learning_rate={value}"]) == 2
    assert "must be a finite number" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
