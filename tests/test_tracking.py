"""``--track``: Weights & Biases, offline here (no login, no network), and its refusals."""

import pytest

from rimrl.cli import main
from tests.test_cli_ppo import TINY, only_run


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
