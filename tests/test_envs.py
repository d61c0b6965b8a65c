"""Environment suites: Atari naming and preprocessing, fake envs, import direction."""

import ast
from pathlib import Path

import numpy as np
import pytest

from envs.atari import UnknownEnvError, atari_id, make_atari_vec_env
from envs.testing import CueImageEnv, CueVectorEnv

ROOT = Path(__file__).resolve().parent.parent


def test_atari_names():
    assert atari_id("DemonAttack") == "ALE/DemonAttack-v5"
    assert atari_id("mspacman") == "ALE/MsPacman-v5"
    assert atari_id("ALE/Pong-v5") == "ALE/Pong-v5"
    assert atari_id("BreakoutNoFrameskip-v4") == "ALE/Breakout-v5"
    with pytest.raises(UnknownEnvError, match="closest: DemonAttack"):
        atari_id("DemonAtack")


def test_atari_preprocessing_and_raw_score():
    env = make_atari_vec_env("DemonAttack", n_envs=2, seed=0)
    obs = env.reset()
    assert obs.shape == (2, 84, 84, 4) and obs.dtype == np.uint8
    rewards = []
    for _ in range(300):
        obs, reward, done, infos = env.step(np.array([1, 1]))  # FIRE
        rewards.extend(reward.tolist())
    assert set(rewards) <= {-1.0, 0.0, 1.0}  # clipped for learning
    assert max(rewards) == 1.0  # DemonAttack scores when firing; raw points are 10+ each
    env.close()


@pytest.mark.parametrize("sticky, probability", [(True, 0.25), (False, 0.0)])
def test_sticky_actions_option(sticky, probability):
    env = make_atari_vec_env("Pong", n_envs=1, seed=0, sticky_actions=sticky)
    ale = env.venv.envs[0].unwrapped.ale
    assert ale.getFloat("repeat_action_probability") == pytest.approx(probability)
    env.close()


def test_cue_envs_reward_only_the_right_answer():
    env = CueVectorEnv(delay=2)
    obs, _ = env.reset(seed=1)
    cue = int(np.argmax(obs[:2]))
    assert obs[cue] == 1.0
    for _ in range(2):
        obs, r, term, _, _ = env.step(0)
        assert r == 0 and not term and obs[:2].sum() == 0
    assert obs[2] == 1.0
    _, r, term, _, _ = env.step(cue)
    assert term and r == 1.0
    img = CueImageEnv(delay=1)
    frame, _ = img.reset(seed=0)
    assert frame.shape == (36, 36, 1) and frame.max() == 255


def imported_modules(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_imports_flow_one_way():
    assert not imported_modules(ROOT / "envs") & {"rimrl", "agents"}
    assert "envs" not in imported_modules(ROOT / "agents")
    core = {p for p in (ROOT / "rimrl").iterdir() if p.name != "cli"}
    for part in core:
        if part.is_dir():
            assert not imported_modules(part) & {"agents", "envs"}, part
