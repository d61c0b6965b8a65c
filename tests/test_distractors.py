"""Distractor suites: pickup splits, Atari overlays, grid encoders, evaluate --distractors."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import rimrl.envs.pickup  # noqa: F401  (registers rimrl/Pickup-*)
from rimrl.envs.minigrid_obs import MissionTokens, VOCABULARY, tokenize
from rimrl.envs.overlays import COLORS, DistractorOverlay, OverlayPools, sprite_mask
from rimrl.envs.pickup import OBJECTS, SPLITS, PickupDistractorsEnv, PickupPools, split_id
from rimrl.cli import main
from rimrl.report.stats import bootstrap_mean_ci, wilson_ci
from tests.conftest import CORE, flags

POOLS = PickupPools()


def objects_in(env: PickupDistractorsEnv):
    found = []
    for obj in env.grid.grid:
        if obj is not None and obj.type in OBJECTS:
            found.append(obj)
    return found


@pytest.mark.parametrize("split", SPLITS)
def test_splits_contain_only_what_they_promise(split):
    colors, types, count = POOLS.split(split)
    for seed in range(25):
        env = PickupDistractorsEnv(split)
        env.reset(seed=seed)
        objs = objects_in(env)
        target = env.target
        distractors = [o for o in objs if o is not target]
        assert len(objs) == count + 1 and len(distractors) == count
        assert target.color in POOLS.train_colors and target.type in POOLS.train_types
        assert env.mission == f"pick up the {target.color} {target.type}"
        for d in distractors:
            assert d.color in colors and d.type in types
            assert (d.color, d.type) != (target.color, target.type)  # target unique
        if split in ("novel-color", "novel"):
            assert not {d.color for d in distractors} & set(POOLS.train_colors)
        if split in ("novel-type", "novel"):
            assert not {d.type for d in distractors} & set(POOLS.train_types)


def test_pickup_seeding_is_reproducible():
    def layout(seed):
        env = PickupDistractorsEnv("novel")
        env.reset(seed=seed)
        return env.grid.encode().tolist(), env.agent_pos, env.mission
    assert layout(3) == layout(3)
    assert layout(3) != layout(4)


def test_picking_target_succeeds_and_other_fails():
    env = PickupDistractorsEnv("train")
    env.reset(seed=0)
    # put the target straight ahead of the agent, then pick it up
    front = env.front_pos
    env.grid.set(*front, env.target)
    _, reward, term, _, info = env.step(env.actions.pickup)
    assert term and info["success"] and 0 < reward <= 1
    env.reset(seed=1)
    wrong = OBJECTS["key"]("yellow")
    env.grid.set(*env.front_pos, wrong)
    _, reward, term, _, info = env.step(env.actions.pickup)
    assert term and not info["success"] and reward == 0


def test_registered_ids_and_tokens():
    env = gym.make(split_id("novel-color"))
    obs, _ = env.reset(seed=0)
    assert env.unwrapped.split == "novel-color"
    assert obs["image"].shape == (7, 7, 3) and obs["mission"].shape == (24,)
    words = [VOCABULARY[i] for i in obs["mission"] if i]
    assert " ".join(words) == env.unwrapped.mission
    assert tokenize("pick up the zebra").tolist()[:5] == [2, 3, 8, 1, 0]  # <unk> 1, <pad> 0
    assert split_id("train") == "rimrl/Pickup-v0"
    std = MissionTokens(gym.make("BabyAI-PickupDist-v0"))
    assert std.reset(seed=0)[0]["mission"].max() > 0


def test_pools_must_be_disjoint():
    with pytest.raises(ValueError, match="novel_colors"):
        PickupPools(novel_colors=("red",))
    with pytest.raises(ValueError, match="novel_shapes"):
        OverlayPools(novel_shapes=("square",))


class _Blank(gym.Env):
    """A constant grey 210x160 RGB frame: every changed pixel is a sprite."""

    observation_space = gym.spaces.Box(0, 255, (210, 160, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.full((210, 160, 3), 7, np.uint8), {}

    def step(self, action):
        return np.full((210, 160, 3), 7, np.uint8), 0.0, False, False, {}


@pytest.mark.parametrize("split", ["train", "novel-color", "novel-shape", "more", "novel"])
def test_overlay_draws_only_requested_pool(split):
    pools = OverlayPools()
    colors, shapes, count = pools.split(split)
    env = DistractorOverlay(_Blank(), split=split)
    for seed in range(5):
        frame, _ = env.reset(seed=seed)
        assert len(env.sprites) == count
        assert {s["color"] for s in env.sprites} <= set(colors)
        assert {s["shape"] for s in env.sprites} <= set(shapes)
        for _ in range(20):
            frame, *_ = env.step(0)
        changed = np.any(frame != 7, axis=-1)
        drawn = {tuple(c) for c in frame[changed].reshape(-1, 3)}
        assert drawn <= {COLORS[c] for c in colors}
        # the player's band at the bottom is never covered
        assert not changed[int(210 * (1 - pools.keep_clear)):].any()
        assert changed.sum() > 0


def test_sprite_masks():
    assert sprite_mask("square", 4).all()
    disc = sprite_mask("disc", 6)
    assert disc[3, 3] and not disc[0, 0]
    ring = sprite_mask("ring", 10)
    assert not ring[5, 5] and ring[5, 0]


def test_grid_parts_embed_cells_and_the_mission_by_hand():
    """A cell is E[object] + E[32 + colour] + E[64 + state] (indices clamped into 0..31); the
    mission is the mean of its words' embeddings (id 0 is padding: zero and not counted) plus
    a linear map of the one-hot direction."""
    from rimrl.nn.grid_encoders import CELL_VALUES, _Parts

    space = gym.make("rimrl/Pickup-v0").observation_space
    parts = _Parts(space, dim=5)
    assert parts.view == space["image"].shape[:2]
    E = parts.cell.weight
    image = torch.tensor([[[[2, 0, 1], [200, 5, 31]]]])  # (B=1, H=1, W=2, 3)
    expected = torch.stack([E[2] + E[CELL_VALUES] + E[2 * CELL_VALUES + 1],
                            E[CELL_VALUES - 1] + E[CELL_VALUES + 5] + E[3 * CELL_VALUES - 1]])
    assert torch.allclose(parts.cells(image)[0, 0], expected)
    W = parts.word.weight
    assert torch.equal(W[0], torch.zeros(5))
    tokens = torch.tensor([[3, 5, 0, 0], [7, 0, 0, 0], [0, 0, 0, 0]])
    direction = torch.eye(4)[[1, 0, 2]]
    words = torch.stack([(W[3] + W[5]) / 2, W[7], torch.zeros(5)])
    assert torch.allclose(parts.mission(tokens, direction), words + parts.direction(direction),
                          atol=1e-6)


def test_grid_encoder_shapes():
    from stable_baselines3.common.preprocessing import preprocess_obs

    from rimrl.nn.grid_encoders import GridEncoder, GridSetEncoder
    from rimrl.nn.rims import RIMs

    env = gym.make("rimrl/Pickup-v0")
    space = env.observation_space
    obs, _ = env.reset(seed=0)
    batch = {k: torch.as_tensor(np.stack([v, v])) for k, v in obs.items()}
    pre = preprocess_obs(batch, space)
    s = GridSetEncoder(space, element_dim=16)
    assert s.num_elements == 50 and s(pre).shape == (2, 50 * 16)
    assert s.features_dim == 50 * 16
    # the position embedding tells apart two cells that hold the same thing
    cells = obs["image"].reshape(49, -1)
    i, j = next((i, j) for i in range(49) for j in range(i + 1, 49)
                if (cells[i] == cells[j]).all())
    elements = s(pre).view(2, 50, 16)
    assert not torch.allclose(elements[0, i], elements[0, j])
    g = GridEncoder(space, features_dim=40)
    assert g(pre).shape == (2, 40)
    core = RIMs(50 * 16, 24, num_units=3, k_active=2, elements=50, input_key_size=8,
                comm_key_size=4, comm_value_size=4)
    out, _ = core(s(pre).unsqueeze(0))
    assert out.shape == (1, 2, 24) and core.cell.input_size == 16


def test_film_modulates_by_hand_values():
    from rimrl.nn.grid_encoders import FiLM

    film = FiLM(2, 3)
    x = torch.ones(1, 3, 1, 1)
    assert torch.equal(film(x, torch.tensor([[5.0, -1.0]])), x)  # built as the identity
    with torch.no_grad():
        film.affine.weight.zero_()
        film.affine.weight[0, 0] = 1.0  # gamma of channel 0 = m_0
        film.affine.bias[3 + 2] = 0.5  # beta of channel 2
    out = film(2 * x, torch.tensor([[3.0, 7.0]])).flatten()
    assert out.tolist() == [2 * (1 + 3.0), 2.0, 2.5]


def _pickup_batch(seed_a=0, seed_b=1):
    from stable_baselines3.common.preprocessing import preprocess_obs

    env = gym.make("rimrl/Pickup-v0")
    obs = [env.reset(seed=s)[0] for s in (seed_a, seed_b)]
    batch = {k: torch.as_tensor(np.stack([o[k] for o in obs])) for k in obs[0]}
    return env.observation_space, preprocess_obs(batch, env.observation_space)


def test_grid_encoder_film_switch_and_old_models():
    from rimrl.nn.grid_encoders import GridEncoder

    space, pre = _pickup_batch()
    torch.manual_seed(0)
    plain = GridEncoder(space, features_dim=40, film=False)
    torch.manual_seed(0)
    film = GridEncoder(space, features_dim=40)  # FiLM is the default
    assert plain.film is None and len(film.film) == 2
    # a model saved before FiLM (convolutions under conv.0 / conv.2) loads and computes what
    # it did: FiLM weights come back as zeros
    old = {k.replace("conv1.", "conv.0.").replace("conv2.", "conv.2."): v
           for k, v in plain.state_dict().items()}
    film.load_state_dict(old)
    assert torch.equal(film(pre), plain(pre))
    # the switch: trained FiLM weights make the mission modulate the convolutions
    with torch.no_grad():
        for layer in film.film:
            layer.affine.weight.normal_()
    assert not torch.allclose(film(pre), plain(pre))


def test_confidence_intervals_hand_values():
    # a return bounded in [0, 1] keeps a bootstrap interval in [0, 1] (the normal interval
    # of [0, 0, 0, 1] would be 0.25 +- 0.49: below 0)
    mean, lo, hi = bootstrap_mean_ci(np.array([0.0, 0.0, 0.0, 1.0]), reps=500)
    assert mean == 0.25 and lo == 0.0 and 0.25 < hi <= 1.0
    rate, lo, hi = wilson_ci(5, 10)
    assert rate == 0.5 and lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    rate, lo, hi = wilson_ci(0, 20)
    assert rate == 0.0 and lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-4)


TINY = flags(CORE + ["ppo.n_steps=32", "ppo.batch_size=64", "ppo.chunk_length=16",
                     "ppo.n_epochs=1"]) + ["--n-envs", "2", "--no-progress"]


@pytest.fixture(scope="module")
def pickup_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", "ppo", "--env", "rimrl/Pickup-v0", "--core", "rims", "--timesteps",
                 "128", "--runs-dir", str(root)] + TINY) == 0
    (run,) = list(root.iterdir())
    return run


def test_evaluate_all_splits_table_and_json(pickup_run, capsys):
    assert main(["evaluate", str(pickup_run), "--distractors", "all", "--episodes", "4"]) == 0
    out = capsys.readouterr().out
    for split in SPLITS:
        assert split in out
    result = json.loads((pickup_run / "distractors.json").read_text())
    assert list(result["splits"]) == list(SPLITS)
    for r in result["splits"].values():
        assert r["episodes"] == 4 and 0 <= r["success_rate"] <= 1
        assert r["success_ci95"][0] <= r["success_rate"] <= r["success_ci95"][1]


def test_evaluate_one_split(pickup_run):
    assert main(["evaluate", str(pickup_run), "--distractors", "more", "novel-color",
                 "--episodes", "2"]) == 0
    result = json.loads((pickup_run / "distractors.json").read_text())
    assert list(result["splits"]) == ["more", "novel-color"]


@pytest.mark.parametrize("splits, message", [
    (["novel-shape"], "split 'novel-shape' does not apply to rimrl/Pickup-v0"),
    (["novl"], "did you mean 'novel'"),
])
def test_bad_split(pickup_run, capsys, splits, message):
    assert main(["evaluate", str(pickup_run), "--distractors"] + splits) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_split_on_env_without_splits(tmp_path, capsys):
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--timesteps", "64",
                 "--runs-dir", str(tmp_path)] + TINY) == 0
    (run,) = list(tmp_path.iterdir())
    assert main(["evaluate", str(run), "--distractors", "all"]) == 2
    assert "has no distractor splits" in capsys.readouterr().err


@pytest.mark.parametrize("view", [7, 3])
def test_fast_observation_equals_minigrid(view):
    from minigrid.minigrid_env import MiniGridEnv

    env = PickupDistractorsEnv("novel", agent_view_size=view)
    assert env.observation_space["image"].shape == (view, view, 3)
    rng = np.random.default_rng(0)
    for seed in range(4):
        env.reset(seed=seed)
        for _ in range(150):
            env.step(int(rng.integers(3)))  # turn left, turn right, forward
            if rng.random() < 0.05:
                env.carrying = OBJECTS["ball"]("red")  # the view shows what is carried
            ours = env.gen_obs()["image"]
            ref = MiniGridEnv.gen_obs(env)["image"]
            assert np.array_equal(ours, ref)
            env.carrying = None


def test_mission_shown_only_for_mission_steps():
    """mission_steps=2: the reset's observation and the first step's carry the mission,
    later ones an empty (all-padding) mission; the default always shows it."""
    env = gym.make("rimrl/Pickup-v0", mission_steps=2)
    obs, _ = env.reset(seed=0)
    missions = [obs["mission"]]
    for _ in range(3):
        obs, *_ = env.step(0)  # turn left: never ends the episode
        missions.append(obs["mission"])
    assert missions[0].any() and np.array_equal(missions[0], missions[1])
    assert not missions[2].any() and not missions[3].any()
    always = gym.make("rimrl/Pickup-v0")
    always.reset(seed=0)
    for _ in range(3):
        obs, *_ = always.step(0)
    assert np.array_equal(obs["mission"], missions[0])
    with pytest.raises(ValueError, match="mission_steps must be at least 1"):
        PickupDistractorsEnv("train", mission_steps=0)


def test_view_size_must_be_odd_and_at_least_3():
    for bad in (1, 4):
        with pytest.raises(ValueError, match="agent_view_size must be odd"):
            PickupDistractorsEnv("train", agent_view_size=bad)


def test_small_view_trains_from_the_cli(tmp_path):
    assert main(["train", "ppo", "--env", "rimrl/Pickup-v0", "--core", "rims", "--timesteps", "64",
                 "--runs-dir", str(tmp_path), "--set", "env.kwargs.agent_view_size=3"] + TINY) == 0
    (run,) = list(tmp_path.iterdir())
    assert main(["evaluate", str(run), "--episodes", "2", "--distractors", "novel",
                 "--no-progress"]) == 0


@pytest.mark.parametrize("env_id", ["BabyAI-GoToObj-v0", "BabyAI-PickupDist-v0"])
def test_standard_babyai_ids_train(tmp_path, env_id):
    assert main(["train", "ppo", "--env", env_id, "--core", "rims", "--timesteps", "64",
                 "--runs-dir", str(tmp_path)] + TINY) == 0
    (run,) = list(tmp_path.iterdir())
    assert (run / "model.zip").is_file()


def test_all_splits_from_a_tuple_or_a_list():
    """The CLI's options hold a tuple, a sweep file a list: 'all' means every split in both."""
    from rimrl.sb3.environments import requested_splits

    assert requested_splits("rimrl/Pickup-v0", ("all",)) == list(SPLITS)
    assert requested_splits("rimrl/Pickup-v0", ["all"]) == list(SPLITS)
