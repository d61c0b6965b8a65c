"""The tiny-run settings every training test starts from, in one place: a test names only
what it changes. Each is a list of ``--set`` overrides (``KEY=VALUE``); :func:`flags` turns
one into command-line arguments."""

#: a RIMs core small enough for a training step in milliseconds (LSTM and GRU cores read
#: its hidden_size, the others are RIMs settings)
CORE = ["core.hidden_size=12", "core.num_units=3", "core.k_active=2",
        "core.input_key_size=8", "core.comm_key_size=4", "core.comm_value_size=4"]
#: PPO on it: a 16-wide encoder, 32-step rollouts cut into 8-step chunks, one epoch
PPO = CORE + ["policy.features_dim=16", "ppo.n_steps=32", "ppo.batch_size=32",
              "ppo.chunk_length=8", "ppo.n_epochs=1"]
#: IQN: 16-wide networks, 8 quantiles, learning from step 50 on a 500-step memory
IQN = ["policy.features_dim=16", "policy.hidden_size=16", "iqn.n_quantiles=8",
       "iqn.n_target_quantiles=8", "policy.n_policy_quantiles=4", "iqn.learning_starts=50",
       "iqn.buffer_size=500", "iqn.batch_size=8"]
#: the copy task: 3 symbols, a gap of 4 in training and 4 and 8 in evaluation
COPY = ["core.hidden_size=12", "core.num_units=3", "core.k_active=2", "task.num_symbols=3",
        "task.train_gap=4", "task.eval_gaps=[4, 8]", "train.eval_batch=8",
        "train.batch_size=4"]


def flags(overrides: list[str]) -> list[str]:
    """``["a=1", "b=2"]`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [arg for text in overrides for arg in ("--set", text)]


#: ``rimrl train ppo`` arguments of a tiny run: checkpoints every 128 steps, two envs
TINY = flags(PPO + ["train.checkpoint_every=128"]) + ["--n-envs", "2", "--no-progress"]
#: ``rimrl train iqn`` arguments of a tiny run
TINY_IQN = flags(IQN + ["train.checkpoint_every=100", "train.log_interval=1"]) + [
    "--n-envs", "2", "--no-progress"]
#: ``rimrl train copy`` arguments of a tiny run
TINY_COPY = flags(COPY + ["train.checkpoint_every=2"]) + ["--no-progress"]


def only_run(root):
    """The one run directory under ``root``."""
    (run,) = [p for p in root.iterdir() if p.is_dir()]
    return run
