"""``rimrl evaluate --probe``: the state hooks by hand, that play() applies them before every
step, the files and tables, and the runs that cannot take a probe."""

import json

import numpy as np
import pytest

from rimrl.cli import main
from rimrl.sb3.evaluation import play
from rimrl.learners.ppo_probes import _zero_slice
from tests.conftest import TINY_IQN
from tests.conftest import TINY, only_run


def test_zero_slice_zeroes_one_rims_part_of_h_and_c_and_leaves_the_input():
    h = np.arange(12, dtype=np.float32).reshape(1, 2, 6) + 1
    c = -h
    out_h, out_c = _zero_slice(2, 4)((h, c))
    assert out_h[0, 0].tolist() == [1, 2, 0, 0, 5, 6]
    assert out_h[0, 1].tolist() == [7, 8, 0, 0, 11, 12]
    assert out_c[0, 1].tolist() == [-7, -8, 0, 0, -11, -12]
    assert h[0, 0, 2] == 3  # the caller's state is not changed
    assert _zero_slice(0, 2)(None) is None


class CountingModel:
    """predict() returns the state it got plus one and records what it got."""

    def __init__(self):
        self.seen = []

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        self.seen.append(None if state is None else state[0].copy())
        h = np.zeros((1, len(obs), 4), np.float32) if state is None else state[0]
        return np.zeros(len(obs), dtype=int), (h + 1, h + 1)


@pytest.mark.parametrize("hook, expected", [
    (None, [None, 1.0, 2.0, 3.0]),          # the state carries over
    (lambda state: None, [None] * 4),      # memoryless: every step starts from zeros
])
def test_play_applies_the_hook_before_every_step(hook, expected):
    from rimrl.sb3.environments import make_env

    class Cfg:
        seed = 0

        class env:
            id, n_envs, distractors, subprocess = "rimrl/CueVector-v0", 1, None, False

    env = make_env(Cfg, n_envs=1, training=False)
    model = CountingModel()
    play(model, env, 1, state_hook=hook)
    env.close()
    got = [None if s is None else float(s[0, 0, 0]) for s in model.seen[:4]]
    assert got == expected


@pytest.fixture(scope="module")
def rims_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "rims",
                 "--timesteps", "64", "--runs-dir", str(root)] + TINY) == 0
    return only_run(root)


@pytest.mark.parametrize("probe, variants", [
    ("memoryless", ["normal", "memoryless"]),
    ("ablate-rims", ["normal", "rim 0", "rim 1", "rim 2"]),
])
def test_probe_writes_its_table_beside_the_evaluation(rims_run, capsys, probe, variants):
    assert main(["evaluate", str(rims_run), "--probe", probe, "--episodes", "6",
                 "--no-progress"]) == 0
    result = json.loads((rims_run / f"probe_{probe.replace('-', '_')}.json").read_text())
    assert result["probe"] == probe and list(result["rows"]) == ["clean"]
    cells = result["rows"]["clean"]
    assert list(cells) == variants
    for name, cell in cells.items():
        assert cell["episodes"] == 6
        lo, hi = cell["success_ci95"]
        assert lo <= cell["success_rate"] <= hi
        if name != "normal":
            assert cell["drop"] == pytest.approx(cells["normal"]["success_rate"]
                                                 - cell["success_rate"])
    out = capsys.readouterr().out
    assert f"probe {probe}" in out and "drop" in out


def test_ablation_needs_rims_and_probes_need_a_state(tmp_path, capsys):
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
                 "--timesteps", "64", "--runs-dir", str(tmp_path / "lstm")] + TINY) == 0
    run = only_run(tmp_path / "lstm")
    assert main(["evaluate", str(run), "--probe", "ablate-rims", "--episodes", "2"]) == 2
    assert "needs a rims core; this run's core is lstm" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--probe", "memoryless", "--episodes", "2",
                 "--video"]) == 2
    assert "run it without --probe" in capsys.readouterr().err
    assert not list(run.glob("probe_*"))
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "none",
                 "--timesteps", "64", "--runs-dir", str(tmp_path / "none")] + TINY) == 0
    assert main(["evaluate", str(only_run(tmp_path / "none")), "--probe", "memoryless",
                 "--episodes", "2"]) == 2
    assert "this run's policy has no state" in capsys.readouterr().err
    assert main(["train", "iqn", "--env", "CartPole-v1", "--encoder", "mlp", "--timesteps",
                 "60", "--runs-dir", str(tmp_path / "iqn")] + TINY_IQN) == 0
    assert main(["evaluate", str(only_run(tmp_path / "iqn")), "--probe", "memoryless",
                 "--episodes", "2"]) == 2
    assert "--probe does not apply to 'iqn' runs" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", str(run), "--probe", "forgetful"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
