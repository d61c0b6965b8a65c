"""Bad input, one table: each command ends with exit 2, at most two lines on stderr, no
traceback, and not one new file on disk (no half-made run directory)."""

import json
import os

import pytest

from rimrl.cli import main

PPO = ["train", "ppo", "--env", "rimrl/CueVector-v0"]
IQN = ["train", "iqn", "--env", "rimrl/CueImage-v0"]

# (argv with {tmp} for the test folder, what the message must say)
CASES = [
    (["train", "ppo", "--env", "rimrl/Pickup-v0", "--encoder", "nature"],
     "cannot read rimrl/Pickup-v0's observations (a dict of"),
    (["train", "iqn", "--env", "rimrl/CueVector-v0"], "cannot read rimrl/CueVector-v0's"),
    (["train", "iqn", "--env", "CartPole-v1"], "choose another --encoder (e.g. mlp)"),
    (IQN + ["--encoder", "nfm-resnet", "--set", "policy.encoder_kwargs.sites=[5]"],
     "could not be built with policy.encoder_kwargs {'sites': [5]}"),
    (PPO + ["--threads", "-2"], "threads must be 0"),
    (PPO + ["--device", "tpu"], "device 'tpu'"),
    (PPO + ["--device", "cuda"], "torch sees no CUDA GPU"),
    (PPO + ["--config", "{tmp}/binary.yaml"], "is not a text file"),
    (PPO + ["--config", "{tmp}/folder"], "is a directory, not a YAML file"),
    (PPO + ["--runs-dir", "{tmp}/file"], "is a file (or lies under one)"),
    (PPO + ["--run-dir", "{tmp}/file"], "is a file, not a directory"),
    (PPO + ["--set", "ppo.learning_rate=.inf"], "must be a finite number"),
    (IQN + ["--set", "iqn.learning_rate=.nan"], "must be a finite number"),
    (PPO + ["--core", "lstm", "--set", "core.hidden_size=10000000"],
     "core.hidden_size 10000000 needs"),
    (PPO + ["--n-envs", "100000000"], "env.n_envs 100000000 needs"),
    (["train", "ppo", "--env", "rimrl/Pickup-v0", "--set", "env.distractors=bogus"], "bogus"),
    (["train", "supervised", "--method", "manifold-mixup", "--set", "method.layers=[nope]"],
     "method.layers ['nope'] not eligible"),
    (["train", "ppo", "--resume", "{tmp}/file"], "is a file; give a run directory"),
    (["evaluate", "{tmp}/file"], "is a file; give a run directory"),
    (["train", "copy", "--resume", "{tmp}/folder"], "not a rimrl run directory"),
    (["sweep", "{tmp}/binary.yaml"], "is not a text file"),
    (["compare", "{tmp}/file"], "is not a directory"),
    # round 3: inputs a hostile or careless user tried
    (PPO + ["--seed", "-1"], "seed must be between 0 and 4294967295"),
    (PPO + ["--seed", "4294967296"], "seed must be between 0 and 4294967295"),
    (PPO + ["--threads", "100000000000"], "threads must be 0 (torch's default) or a count up"),
    (PPO + ["--set", "policy.net_arch=[-5]"], "policy.net_arch must list positive layer"),
    (PPO + ["--config", "{tmp}/fifo.yaml"], "is not a regular file (a FIFO"),
    (PPO + ["--config", "{tmp}/bomb.yaml"], "uses more than 100 YAML aliases"),
    (PPO + ["--config", "{tmp}/huge.yaml"], "more than a config holds"),
    (["train", "iqn", "--env", "Pendulum-v1", "--encoder", "mlp"],
     "IQN cannot act in Pendulum-v1: its actions are Box"),
    (["train", "iqn", "--env", "FrozenLake-v1", "--encoder", "mlp"],
     "IQN cannot read FrozenLake-v1's observations (Discrete(16))"),
    (PPO + ["--eval-every", "-1"], "eval.every must be 0 (off)"),
    (PPO + ["--set", "core.variant=paper"], "core.variant 'paper' is unknown"),
    (PPO + ["--set", "core.comm_output=tanh"], "core.comm_output 'tanh' is unknown"),
    (PPO + ["--run-dir", "{tmp}/foreign"], "is a folder that rimrl did not make"),
    (["evaluate", "{tmp}/copyrun", "--distractors", "all"],
     "--distractors does not apply to 'copy' runs"),
    (["evaluate", "{tmp}/copyrun", "--probe", "memoryless"], "--probe does not apply to 'copy'"),
    (["train", "copy", "--resume", "{tmp}/copyrun", "--config", "{tmp}/huge.yaml"],
     "so --config would be ignored; drop it"),
    (["train", "copy", "--resume", "{tmp}/copyrun", "--run-dir", "{tmp}/new"],
     "so --run-dir would be ignored; drop it"),
    (["train", "copy", "--resume", "{tmp}/copyrun", "--print-config"],
     "--print-config shows a new run's config; a run's own is in"),
    (PPO + ["--set", "env.kwargs.roomsize=9"], "does not take env.kwargs {'roomsize': 9}"),
    (["train", "ppo", "--env", "Pong", "--set", "env.kwargs.mode=1"],
     "env.kwargs applies to gymnasium, MiniGrid and pickup envs"),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("not a run\n")
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "bomb.yaml").write_text("a: &a [1, 1]\n" + "".join(
        f"k{i}: &k{i} [{', '.join(['*a' if i == 0 else f'*k{i - 1}'] * 9)}]\n"
        for i in range(20)))
    (tmp_path / "huge.yaml").write_text("# padding\n" * 200_000)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "model.zip").write_bytes(b"mine")
    copyrun = tmp_path / "copyrun"
    copyrun.mkdir()
    (copyrun / "config.yaml").write_text("{}\n")
    (copyrun / "run.json").write_text(json.dumps({"kind": "copy"}))
    monkeypatch.chdir(tmp_path)  # a default runs/ folder would appear here
    return tmp_path


@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(c[0][:4]) + " " + c[1][:20]
                                                     for c in CASES])
def test_bad_input_one_line_exit_2_nothing_written(workdir, capsys, argv, message):
    before = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    code = main([arg.format(tmp=workdir) for arg in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err, err
    assert len(err.splitlines()) <= 2 and "Traceback" not in err
    assert sorted(p.relative_to(workdir) for p in workdir.rglob("*")) == before


def test_iqn_on_a_vector_env_with_the_flatten_encoder_trains(tmp_path):
    """Encoders without a features_dim argument are built without one (was a TypeError)."""
    assert main(["train", "iqn", "--env", "CartPole-v1", "--encoder", "flatten",
                 "--timesteps", "64", "--runs-dir", str(tmp_path), "--quiet",
                 "--set", "iqn.buffer_size=1000"]) == 0
    (run,) = tmp_path.iterdir()
    assert json.loads((run / "train_summary.json").read_text())["timesteps"] >= 64
