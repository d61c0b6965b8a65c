"""``--track``: Weights & Biases, offline here (no login, no network), and its refusals."""

import pytest

from rimrl.cli import main
from tests.conftest import TINY, only_run


def test_track_runs_offline_and_says_where(tmp_path, monkeypatch, capsys):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login: offline
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
                 "--timesteps", "64", "--runs-dir", str(tmp_path / "runs"), "--track"]
                + TINY) == 0
    run = only_run(tmp_path / "runs")
    (offline,) = (run / "wandb").glob("offline-run-*")
    assert list(offline.glob("run-*.wandb"))  # the offline record W&B would upload
    out = capsys.readouterr().out
    assert f"W&B: offline run in {offline}" in out and f"wandb sync {offline}" in out


def test_track_without_wandb_is_refused_before_a_run_exists(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else real(name, *a))
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
                 "--timesteps", "64", "--runs-dir", str(tmp_path), "--track"] + TINY) == 2
    assert "--track needs Weights & Biases" in capsys.readouterr().err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_mode_follows_credentials(tmp_path, monkeypatch):
    from rimrl.tracking import tracking_mode

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert tracking_mode() == "offline"
    (tmp_path / ".netrc").write_text("machine api.wandb.ai login user password key\n")
    (tmp_path / ".netrc").chmod(0o600)
    assert tracking_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert tracking_mode() == "disabled"


@pytest.mark.parametrize("env, project, message", [
    ({"WANDB_MODE": "bogus"}, "rimrl", "WANDB_MODE='bogus' is not a W&B mode"),
    ({"WANDB_MODE": "offline"}, "a/b", "is not a W&B project name"),
    ({"WANDB_MODE": "offline"}, "x" * 129, "is not a W&B project name"),
    ({"WANDB_MODE": "online"}, "rimrl", "WANDB_MODE=online needs a W&B login"),
])
def test_bad_tracking_settings_are_refused_before_a_run_exists(tmp_path, monkeypatch, capsys,
                                                               env, project, message):
    pytest.importorskip("wandb")
    monkeypatch.setenv("HOME", str(tmp_path))  # no login
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    runs = tmp_path / "runs"
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
                 "--timesteps", "64", "--runs-dir", str(runs), "--track",
                 "--set", f"train.wandb_project={project}"] + TINY) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not runs.exists() or not any(runs.iterdir())


def test_disabled_tracking_trains_and_says_so(tmp_path, monkeypatch, capsys):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
                 "--timesteps", "64", "--runs-dir", str(tmp_path), "--track"] + TINY) == 0
    assert "W&B: disabled (WANDB_MODE=disabled): nothing was recorded" in capsys.readouterr().out
    assert (only_run(tmp_path) / "model.zip").is_file()


@pytest.mark.parametrize("named", [False, True])
def test_a_tracker_that_fails_to_start_leaves_no_run(tmp_path, monkeypatch, capsys, named):
    """W&B refusing at start (network, a revoked key): one line, exit 2, and the new run's
    folder is gone (a folder named with --run-dir stays, empty)."""
    wandb = pytest.importorskip("wandb")

    def refuse(**kwargs):
        raise ConnectionError("api.wandb.ai unreachable\nmore")

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(wandb, "init", refuse)
    where = ["--run-dir", str(tmp_path / "mine")] if named else ["--runs-dir", str(tmp_path)]
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
                 "--timesteps", "64", "--track"] + where + TINY) == 2
    err = capsys.readouterr().err
    assert "W&B could not start the run (ConnectionError: api.wandb.ai unreachable)" in err
    assert len(err.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == (["mine"] if named else [])
    if named:
        assert not any((tmp_path / "mine").iterdir())
