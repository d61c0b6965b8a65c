"""``env.backend: ale-vector``: ale-py's C++ vector env behind SB3's VecEnv interface, with
SB3 AtariWrapper's training semantics (issue #24): life losses end learning episodes while
the game goes on, rewards are clipped for learning, logs get the raw game score."""

import numpy as np
import pytest

from rimrl.cli import main
from rimrl.envs.ale_vector import AleVectorEnv, rom_name


def play(clip_reward: bool, life: bool, game: str = "SpaceInvaders", steps: int = 1500):
    env = AleVectorEnv(game, 2, seed=3, num_threads=1, clip_reward=clip_reward,
                       terminal_on_life_loss=life)
    rng = np.random.default_rng(0)
    obs = env.reset()
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    rewards, dones, games = [], [], []
    for t in range(steps):
        _, r, d, infos = env.step(rng.integers(env.action_space.n, size=2))
        rewards.append(r)
        dones.append(d)
        games += [(t, i, info["episode"]) for i, info in enumerate(infos) if "episode" in info]
    env.close()
    return np.array(rewards), np.array(dones), games


def test_rom_names():
    assert rom_name("DemonAttack") == "demon_attack"
    assert rom_name("ALE/MsPacman-v5") == "ms_pacman"
    assert rom_name("PongNoFrameskip-v4") == "pong"


def test_life_losses_end_episodes_and_games_report_raw_scores():
    raw, life_dones, games = play(clip_reward=False, life=True)
    clipped, _, _ = play(clip_reward=True, life=True)
    _, game_dones, games_again = play(clip_reward=False, life=False)
    assert raw.max() > 1  # the test would not see clipping otherwise
    assert np.array_equal(clipped, np.sign(raw))  # same seed, same actions: same game
    def without_time(found):
        return [(t, i, e["r"], e["l"]) for t, i, e in found]

    # life losses do not restart the game: the same games end at the same steps
    assert games and without_time(games) == without_time(games_again)
    assert life_dones.sum() >= 3 * len(games) > game_dones.sum() - 2  # 3 lives per game
    t, i, episode = games[0]
    assert episode["r"] == raw[:t + 1, i].sum() and episode["l"] == t + 1


def test_training_resuming_and_evaluating_on_the_c_backend(tmp_path, capsys):
    args = ["train", "ppo", "--env", "Breakout", "--core", "lstm", "--n-envs", "2",
            "--set", "env.backend=ale-vector", "--set", "ppo.n_steps=64",
            "--set", "ppo.batch_size=64", "--set", "ppo.chunk_length=16",
            "--set", "core.hidden_size=16", "--runs-dir", str(tmp_path), "--no-progress"]
    assert main(args + ["--timesteps", "128"]) == 0
    (run,) = list(tmp_path.iterdir())
    assert "backend: ale-vector" in (run / "config.yaml").read_text()
    assert main(["train", "ppo", "--resume", str(run), "--timesteps", "256",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--episodes", "1", "--no-progress"]) == 0
    assert "Breakout, core lstm, 1 episodes" in capsys.readouterr().out
