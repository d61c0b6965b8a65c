"""``rimrl evaluate`` keeps what it made: per-split evaluations merge into one
distractors.json, a different evaluation replaces it and says so, and --video records every
split."""

import json

import pytest

from rimrl.cli import main
from rimrl.learners.evaluation import merged_with_earlier
from tests.test_cli_ppo import only_run

PICKUP = ["--set", "policy.features_dim=16", "--set", "core.hidden_size=12", "--set",
          "ppo.n_steps=32", "--set", "ppo.batch_size=32", "--set", "ppo.chunk_length=8",
          "--n-envs", "2", "--no-progress"]


@pytest.fixture(scope="module")
def pickup_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pickup")
    assert main(["train", "ppo", "--env", "rimrl/Pickup-v0", "--core", "lstm", "--timesteps",
                 "64", "--runs-dir", str(root)] + PICKUP) == 0
    return only_run(root)


def splits_of(run):
    return list(json.loads((run / "distractors.json").read_text())["splits"])


def test_evaluations_of_one_model_merge_by_split(pickup_run, capsys):
    run = pickup_run
    (run / "distractors.json").unlink(missing_ok=True)
    assert main(["evaluate", str(run), "--distractors", "novel", "train", "--episodes", "2",
                 "--no-progress"]) == 0
    assert main(["evaluate", str(run), "--distractors", "more", "novel", "--episodes", "2",
                 "--no-progress", "--video"]) == 0
    out = capsys.readouterr().out
    assert "(kept the earlier evaluation's train; replaced novel)" in out
    assert splits_of(run) == ["novel", "train", "more"]
    assert (run / "videos" / "more_episode_0.gif").is_file()
    assert (run / "videos" / "novel_episode_0.gif").is_file()
    assert main(["evaluate", str(run), "--distractors", "more", "--episodes", "3",
                 "--no-progress"]) == 0
    assert "replaced an earlier evaluation of novel, train, more with another model or " \
           "setting" in capsys.readouterr().out
    assert splits_of(run) == ["more"]


def test_merge_rule_by_hand(tmp_path):
    path = tmp_path / "d.json"
    base = {"checkpoint": "model.zip", "episodes_per_split": 5, "deterministic": False,
            "seed": 1}
    new = dict(base, splits={"a": 1})
    assert merged_with_earlier(path, new) == (new, "")  # no earlier file
    path.write_text(json.dumps(dict(base, splits={"b": 2})))
    assert merged_with_earlier(path, new)[0]["splits"] == {"b": 2, "a": 1}
    path.write_text(json.dumps(dict(base, seed=2, splits={"b": 2})))
    assert merged_with_earlier(path, new)[0]["splits"] == {"a": 1}
    path.write_text("{not json")
    assert merged_with_earlier(path, new) == (new, "")
