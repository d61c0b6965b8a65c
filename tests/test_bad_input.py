"""Bad input, one table: each command ends with exit 2, at most two lines on stderr, no
traceback, and not one new file on disk (no half-made run directory)."""

import json
import os
import shutil

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
    (PPO + ["--n-envs", "100000000"], "env.n_envs must be at most 4,096 (each env is built"),
    (["train", "ppo", "--env", "rimrl/Pickup-v0", "--set", "env.distractors=bogus"], "bogus"),
    (["train", "supervised", "--method", "manifold-mixup", "--set", "method.layers=[nope]"],
     "method.layers ['nope'] not eligible"),
    (["train", "ppo", "--resume", "{tmp}/file"], "is a file; give a run directory"),
    (["evaluate", "{tmp}/file"], "is a file; give a run directory"),
    (["train", "copy", "--resume", "{tmp}/folder"], "not a rimrl run directory"),
    (["sweep", "{tmp}/binary.yaml"], "is not a text file"),
    (["compare", "{tmp}/file"], "is not a directory"),
    # round 3: inputs a hostile or careless user tried
    (PPO + ["--seed", "-1"], "seed must be between 0 and 4,294,967,295"),
    (PPO + ["--seed", "4294967296"], "seed must be between 0 and 4,294,967,295"),
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
    (PPO + ["--eval-every", "100"], "eval.every (100) is less than one rollout (ppo.n_steps x "
     "env.n_envs = 1024 steps)"),
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
    (PPO + ["--set", "env.kwargs.roomsize=9"], "refuses env.kwargs {'roomsize': 9}"),
    # the env's own checks of env.kwargs values, as one line; bounds on resource knobs
    (["train", "ppo", "--env", "rimrl/Pickup-v1", "--set", "env.kwargs.agent_view_size=4"],
     "rimrl/Pickup-v1 refuses env.kwargs {'agent_view_size': 4}: agent_view_size must be odd"),
    (["train", "ppo", "--env", "rimrl/Pickup-v1", "--set", "env.kwargs.room_size=1000"],
     "room_size must be between 5 and 25"),
    (["train", "ppo", "--env", "rimrl/Pickup-v1", "--set", "env.kwargs.mission_steps=0"],
     "mission_steps must be at least 1"),
    (["train", "ppo", "--env", "rimrl/Pickup-v1", "--set", "env.kwargs.split=novel"],
     "env.kwargs.split is set by the env id: a run trains on env.distractors"),
    (["train", "ppo", "--env", "rimrl/Pickup-v1", "--set", "env.kwargs.version=0"],
     "choose rimrl/Pickup-v0 or rimrl/Pickup-v1 with --env"),
    (PPO + ["--eval-every", "1024", "--set", "eval.episodes=1e9"],
     "eval.episodes must be between 1 and 100,000"),
    (["evaluate", "{tmp}/pporun", "--episodes", "1000000000"],
     "--episodes must be between 1 and 100,000"),
    (["train", "ppo", "--env", "Pong", "--set", "env.kwargs.mode=1"],
     "env.kwargs applies to gymnasium, MiniGrid and pickup envs"),
    # round 8: the hostile table grows past 100 (issue #25 item 7)
    # -- train ppo: names, numbers, shapes of values
    (["train", "ppo", "--env", "NoSuchGame"], "NoSuchGame"),
    (PPO + ["--core", "transformer"], "unknown core 'transformer'"),
    (PPO + ["--encoder", "bogus"], "bogus"),
    (PPO + ["--n-envs", "0"], "env.n_envs"),
    (PPO + ["--timesteps", "0"], "timesteps"),
    (PPO + ["--timesteps", "-5"], "timesteps"),
    (PPO + ["--set", "ppo.n_steps=0"], "ppo.n_steps"),
    (PPO + ["--set", "ppo.batch_size=0"], "ppo.batch_size"),
    (PPO + ["--set", "ppo.n_epochs=0"], "ppo.n_epochs"),
    (PPO + ["--set", "ppo.clip_range=-1"], "ppo.clip_range"),
    (PPO + ["--set", "ppo.gamma=2"], "ppo.gamma"),
    (PPO + ["--set", "ppo.gae_lambda=-0.5"], "ppo.gae_lambda"),
    (PPO + ["--set", "ppo.learning_rate=-1"], "ppo.learning_rate"),
    (PPO + ["--set", "ppo.chunk_length=7"], "chunk_length"),
    (PPO + ["--set", "ppo.lr_schedule=cosine"], "cosine"),
    (["train", "copy", "--set", "task=5"], "task"),
    (PPO + ["--set", "core=5"], "core"),
    (PPO + ["--set", "unknown.key=1"], "unknown config key 'unknown'"),
    (PPO + ["--set", "seed=abc"], "seed"),
    (PPO + ["--set", "ppo.learning_rate=[1, 2]"], "ppo.learning_rate"),
    (PPO + ["--set", "noequals"], "must look like key=value"),
    (PPO + ["--set", "=5"], "has an empty key"),
    (PPO + ["--set", "core.k_active=0"], "k_active"),
    (PPO + ["--set", "core.k_active=9"], "k_active"),
    (PPO + ["--set", "core.num_units=0"], "num_units"),
    (PPO + ["--set", "core.hidden_size=7"], "hidden_size"),
    (PPO + ["--set", "core.dynamics=rnn"], "dynamics"),
    (PPO + ["--set", "core.hidden_size=-4"], "hidden_size"),
    (PPO + ["--set", "train.checkpoint_every=0"], "checkpoint_every"),
    (PPO + ["--set", "policy.features_dim=0"], "features_dim"),
    (PPO + ["--set", "env.frame_stack=0"], "frame_stack"),
    (PPO + ["--eval-every", "1024", "--set", "eval.episodes=0"], "eval.episodes"),
    (PPO + ["--set", "eval.distractors=[novel]"], "has no distractor splits"),
    (["train", "ppo", "--env", "rimrl/Pickup-v0", "--set", "eval.distractors=[bogus]"],
     "unknown distractor split 'bogus'"),
    (PPO + ["--set", "env.distractors=novel"], "distractor"),
    (PPO + ["--device", "cuda:7"], "cuda"),
    (PPO + ["--config", "{tmp}/missing.yaml"], "missing.yaml"),
    (PPO + ["--config", "{tmp}/list.yaml"], "mapping"),
    (PPO + ["--config", "{tmp}/broken.yaml"], "broken.yaml"),
    (PPO + ["--config", "{tmp}/unknown.yaml"], "unknown config key 'ppo.learnin_rate'"),
    (PPO + ["--runs-dir", "{tmp}/file/below"], "is a file (or lies under one)"),
    (PPO + ["--run-dir", "{tmp}/pporun"], "already holds a run"),
    (PPO + ["--run-dir", "{tmp}/pporun/checkpoints/mine"], "lies inside the run directory"),
    (PPO + ["--runs-dir", "{tmp}/pporun/tb"], "lies inside the run directory"),
    (PPO + ["--set", "env.backend=envpol"], "unknown backend 'envpol'"),
    (PPO + ["--set", "env.backend=ale-vector"], "ale-vector runs Atari games"),
    (["train", "ppo", "--env", "Pong", "--set", "env.backend=ale-vector",
      "--set", "env.distractors=novel"], "cannot draw distractor overlays"),
    # -- resume
    (["train", "ppo", "--resume", "{tmp}/pporun", "--set", "ppo.learning_rate=1"],
     "cannot change it"),
    (["train", "ppo", "--resume", "{tmp}/pporun", "--seed", "3"], "cannot change it"),
    (["train", "ppo", "--resume", "{tmp}/pporun", "--core", "rims"], "cannot change it"),
    (["train", "iqn", "--resume", "{tmp}/pporun"], "is a 'ppo' run, not a 'iqn' run"),
    (["train", "ppo", "--resume", "{tmp}/missing"], "missing"),
    (["train", "ppo", "--resume", "{tmp}/pporun", "--config", "{tmp}/list.yaml"],
     "--config would be ignored"),
    (["train", "ppo", "--resume", "{tmp}/badmeta"], "run.json"),
    (["train", "supervised", "--resume", "{tmp}/pporun"], "do not resume"),
    # -- evaluate
    (["evaluate", "{tmp}/pporun", "--episodes", "0"], "--episodes must be between 1 and 100,000 (more runs for hours for an interval no one needs), got 0"),
    (["evaluate", "{tmp}/pporun", "--episodes", "-3"], "--episodes must be between 1 and"),
    (["evaluate", "{tmp}/pporun", "--distractors", "novel"], "rimrl/CueVector-v0"),
    (["evaluate", "{tmp}/pporun", "--gaps", "5"], "--gaps does not apply to 'ppo' runs"),
    (["evaluate", "{tmp}/pporun", "--probe", "ablate-rims"], "needs a rims core"),
    (["evaluate", "{tmp}/pporun", "--probe", "memoryless", "--video"],
     "run it without --probe"),
    (["evaluate", "{tmp}/missing"], "missing"),
    (["evaluate", "{tmp}/folder"], "not a rimrl run directory"),
    (["evaluate", "{tmp}/badmeta"], "run.json"),
    (["evaluate", "{tmp}/tampered"], "--trust"),
    (["evaluate", "{tmp}/badchecksums"], "checksums.json"),
    (["evaluate", "{tmp}/badconfig"], "config.yaml"),
    (["evaluate", "{tmp}/nomodel"], "no model.zip and no checkpoint"),
    (["evaluate", "{tmp}/strangekind"], "no such learner"),
    (["evaluate", "{tmp}/copyrun", "--gaps", "0"], "--gaps must be positive"),
    (["evaluate", "{tmp}/copyrun", "--episodes", "5"], "--episodes does not apply to 'copy'"),
    (["evaluate", "{tmp}/suprun"], "no separate evaluation"),
    # -- train copy
    (["train", "copy", "--set", "task.num_symbols=0"], "num_symbols"),
    (["train", "copy", "--set", "train.updates=-1"], "updates"),
    (["train", "copy", "--set", "core.k_active=10"], "k_active"),
    (["train", "copy", "--set", "core.name=transformer"], "unknown core 'transformer'"),
    (["train", "copy", "--set", "train.learning_rate=-1"], "learning_rate"),
    (["train", "copy", "--set", "task.train_gap=-1"], "train_gap"),
    (["train", "copy", "--set", "task.eval_gaps=[]"], "eval_gaps"),
    (["train", "copy", "--set", "train.batch_size=0"], "batch_size"),
    (["train", "copy", "--set", "train.lr=.nan"], "must be a finite number"),
    # -- train supervised
    (["train", "supervised", "--method", "bogus"], "bogus"),
    (["train", "supervised", "--set", "data.name=bogus"], "bogus"),
    (["train", "supervised", "--set", "train.updates=0"], "updates"),
    (["train", "supervised", "--set", "method.ema_decay=1.5"], "method.ema_decay"),
    (["train", "supervised", "--set", "model.dropout=1"], "model.dropout"),
    (["train", "supervised", "--set", "method.noise_std=-1"], "method.noise_std"),
    # -- train iqn
    (IQN + ["--set", "iqn.n_quantiles=0"], "iqn.n_quantiles"),
    (IQN + ["--set", "iqn.buffer_size=0"], "iqn.buffer_size"),
    (IQN + ["--set", "iqn.n_step_return=0"], "iqn.n_step_return"),
    (IQN + ["--set", "iqn.kappa=-1"], "iqn.kappa"),
    (IQN + ["--set", "iqn.batch_size=0"], "iqn.batch_size"),
    (IQN + ["--encoder", "bogus"], "bogus"),
    # -- compare and sweep
    (["compare", "{tmp}/folder"], "no PPO or IQN runs with logged scores"),
    (["compare", "{tmp}/missing"], "missing"),
    (["compare", "{tmp}/folder", "--points", "1"], "--points must be between 2 and 10,000"),
    (["compare", "{tmp}/folder", "--reps", "0"], "--reps must be between 1 and 100,000"),
    (["compare", "{tmp}/folder", "--reps", "99999999999999999999"], "--reps must be between"),
    (["evaluate", "{tmp}/pporun", "--seed", "-1"], "--seed must be between 0 and"),
    (["sweep", "{tmp}/missing.yaml"], "does not exist"),
    (["sweep", "{tmp}/folder"], "is a directory; give a YAML file"),
    (["sweep", "{tmp}/list.yaml"], "mapping"),
    (["sweep", "{tmp}/fifo.yaml"], "is not a regular file"),
    (["sweep", "{tmp}/bomb.yaml"], "YAML aliases"),
    # -- argparse itself (exit 2, one usage line)
    (["train", "ppo", "--timesteps", "many"], "invalid int value"),
    (["train", "dqn"], "invalid choice"),
    (["evaluate"], "the following arguments are required"),
    (["evaluate", "{tmp}/pporun", "--probe", "bogus"], "invalid choice"),
]


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    """A finished tiny PPO run (LSTM core, CueVector), trained once for the whole table."""
    root = tmp_path_factory.mktemp("pporun")
    assert main(PPO + ["--core", "lstm", "--timesteps", "64", "--n-envs", "2",
                       "--set", "ppo.n_steps=32", "--set", "ppo.batch_size=32",
                       "--set", "ppo.chunk_length=8", "--set", "core.hidden_size=8",
                       "--set", "policy.features_dim=8", "--set", "train.checkpoint_every=32",
                       "--runs-dir", str(root), "--no-progress"]) == 0
    (run,) = list(root.iterdir())
    return run


def snapshot(root):
    """Every path below ``root`` with its size and modification time: a new, removed or
    rewritten file changes it."""
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1,
                   p.stat().st_mtime_ns if p.is_file() else 0)
                  for p in root.rglob("*") if not p.is_fifo())


@pytest.fixture
def workdir(tmp_path, monkeypatch, ppo_run):
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
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "broken.yaml").write_text("ppo: [unclosed\n")
    (tmp_path / "unknown.yaml").write_text("ppo:\n  learnin_rate: 0.1\n")
    pporun = tmp_path / "pporun"
    shutil.copytree(ppo_run, pporun)
    for name, change in [("badmeta", lambda r: (r / "run.json").write_text("{not json")),
                         ("tampered", lambda r: (r / "model.zip").write_bytes(b"PK\x03\x04x")),
                         ("badchecksums", lambda r: (r / "checksums.json").write_text("[1")),
                         ("badconfig", lambda r: (r / "config.yaml").write_text("ppo: [\n")),
                         ("nomodel", lambda r: [p.unlink() for p in
                                                [r / "model.zip", *r.glob("checkpoints/*")]]),
                         ("strangekind", lambda r: (r / "run.json").write_text(
                             json.dumps({"kind": "dqn"})))]:
        shutil.copytree(ppo_run, tmp_path / name)
        change(tmp_path / name)
    suprun = tmp_path / "suprun"
    suprun.mkdir()
    (suprun / "config.yaml").write_text("{}\n")
    (suprun / "run.json").write_text(json.dumps({"kind": "supervised"}))
    monkeypatch.chdir(tmp_path)  # a default runs/ folder would appear here
    return tmp_path


@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(c[0][:4]) + " " + c[1][:20]
                                                     for c in CASES])
def test_bad_input_one_line_exit_2_nothing_written(workdir, capsys, argv, message):
    before = snapshot(workdir)
    try:
        code = main([arg.format(tmp=workdir) for arg in argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err, err
    assert len(err.splitlines()) <= 2 and "Traceback" not in err
    assert snapshot(workdir) == before


def test_the_table_holds_more_than_100_cases():
    assert len(CASES) >= 100


def test_iqn_on_a_vector_env_with_the_flatten_encoder_trains(tmp_path):
    """Encoders without a features_dim argument are built without one (was a TypeError)."""
    assert main(["train", "iqn", "--env", "CartPole-v1", "--encoder", "flatten",
                 "--timesteps", "64", "--runs-dir", str(tmp_path), "--quiet",
                 "--set", "iqn.buffer_size=1000"]) == 0
    (run,) = tmp_path.iterdir()
    assert json.loads((run / "train_summary.json").read_text())["timesteps"] >= 64
