"""Environment suites: Atari naming and preprocessing, fake envs, import direction."""

import ast
from pathlib import Path

import numpy as np
import pytest

from rimrl.envs.atari import UnknownEnvError, atari_id, make_atari_vec_env
from rimrl.envs.testing import CueImageEnv, CueVectorEnv

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


def imported_modules(where: Path) -> set[str]:
    """Full dotted names imported by a module or by every module below a folder."""
    names = set()
    for path in ([where] if where.is_file() else where.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
    return names


def uses(names: set[str], *packages: str) -> set[str]:
    return {n for n in names for p in packages if n == p or n.startswith(p + ".")}


def test_imports_flow_one_way():
    """Layers, bottom up: envs (uses nothing of ours); rimrl's core (every module and folder
    of rimrl/ but learners/, cli/ and __main__: uses neither agents, envs, learners nor the
    CLI); agents (the core only); learners (ties agents and envs together, never the CLI);
    sweeps (plans and runs grids of learner runs, never the CLI); the CLI (parses flags,
    asks the learners and the sweeps)."""
    envs = imported_modules(ROOT / "envs")
    assert uses(envs, "rimrl") <= uses(envs, "rimrl.envs")
    assert not uses(imported_modules(ROOT / "agents"), "rimrl.envs", "rimrl.cli",
                    "rimrl.learners")
    assert not uses(imported_modules(ROOT / "rimrl" / "learners"), "rimrl.cli",
                    "rimrl.sweeps")
    assert not uses(imported_modules(ROOT / "rimrl" / "sweeps"), "rimrl.cli")
    parts = [p for p in (ROOT / "rimrl").iterdir()
             if p.name not in ("cli", "learners", "sweeps", "__main__.py", "__pycache__")
             and (p.is_dir() or p.suffix == ".py")]
    assert any(p.is_file() for p in parts) and any(p.is_dir() for p in parts)
    for part in parts:
        assert not uses(imported_modules(part), "rimrl.agents", "rimrl.envs", "rimrl.cli",
                        "rimrl.learners"), part


def test_no_module_imports_its_own_package():
    """A module never imports its own package's ``__init__`` (``from rimrl.cli import main``
    inside ``rimrl/cli/sweep.py`` once made a circle the layer test could not see): only the
    ``__init__`` itself gathers its submodules."""
    offenders = []
    for folder in ("rimrl", "agents", "envs"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "__init__.py":
                continue
            rel = path.parent.relative_to(ROOT)
            package = ".".join(("rimrl",) + rel.parts[1:] if folder == "rimrl"
                               else ("rimrl",) + rel.parts)
            if package == "rimrl":  # rimrl/__init__ holds the version and imports nothing
                continue
            parent, _, last = package.rpartition(".")
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import) and any(a.name == package for a in node.names):
                    offenders.append(str(path))
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and (
                        node.module == package
                        or (node.module == parent and any(a.name == last for a in node.names))):
                    offenders.append(str(path))
    assert not offenders


def test_cli_builds_nothing():
    """The CLI parses and prints: models, envs and agents are the learners' business."""
    assert not uses(imported_modules(ROOT / "rimrl" / "cli"), "rimrl.agents", "rimrl.envs",
                    "rimrl.nn", "rimrl.tasks", "torch", "stable_baselines3")


def test_no_generic_top_level_import_names():
    """agents/ and envs/ install as rimrl.agents and rimrl.envs: nothing imports them bare."""
    for folder in ("rimrl", "agents", "envs", "tests", "benchmarks"):
        assert not uses(imported_modules(ROOT / folder), "agents", "envs", "configs"), folder


def test_subprocess_workers_build_rimrl_envs(tmp_path):
    """``env.subprocess=true`` on rimrl's own envs: worker processes register the suites
    themselves (they once failed with NamespaceNotFound: rimrl)."""
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from rimrl.cli import main
    from rimrl.learners.environments import make_env
    from tests.test_cli_ppo import TINY, only_run

    class Cfg:
        seed = 0

        class env:
            id, n_envs, distractors, subprocess = "rimrl/Pickup-v0", 2, "novel", True

    env = make_env(Cfg)
    try:
        assert isinstance(env, SubprocVecEnv)
        obs = env.reset()
        assert all(len(v) == 2 for v in obs.values())  # a dict observation per worker
        assert env.get_attr("split") == ["novel", "novel"]
    finally:
        env.close()
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm", "--timesteps",
                 "64", "--set", "env.subprocess=true", "--runs-dir", str(tmp_path)] + TINY) == 0
    assert (only_run(tmp_path) / "model.zip").is_file()


def test_env_kwargs_reach_the_constructor():
    """``env.kwargs`` (RL Zoo's env_kwargs) is passed to gym.make: a 9x9 pickup room."""
    from rimrl.learners.environments import make_env

    class Cfg:
        seed = 0

        class env:
            id, n_envs, distractors, subprocess = "rimrl/Pickup-v0", 1, None, False
            kwargs = {"room_size": 9}

    env = make_env(Cfg)
    try:
        assert env.get_attr("width") == [9] and env.get_attr("height") == [9]
    finally:
        env.close()
    Cfg.env.kwargs = {}
    env = make_env(Cfg)
    try:
        assert env.get_attr("width") == [7]
    finally:
        env.close()
