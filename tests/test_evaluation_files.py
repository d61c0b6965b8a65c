"""``rimrl evaluate`` keeps what it made: per-split evaluations merge into one
distractors.json, a different evaluation replaces it and says so, and --video records every
split."""

import json

import pytest

from rimrl.cli import main
from rimrl.sb3.evaluation import merged_with_earlier
from tests.conftest import only_run

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


def test_video_keeps_the_whole_first_episode_with_mission_and_rims_strip(tmp_path):
    """CueVector episodes take 5 steps: 6 frames (the reset and every step, the last one
    after the answer, before the automatic reset); a RIMs policy adds a strip of 3 cells."""
    from PIL import Image

    from tests.conftest import TINY

    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "rims",
                 "--timesteps", "64", "--runs-dir", str(tmp_path)] + TINY) == 0
    run = only_run(tmp_path)
    assert main(["evaluate", str(run), "--episodes", "2", "--video", "--no-progress"]) == 0
    gif = Image.open(run / "videos" / "episode_0.gif")
    assert gif.size == (2 + 3 * 14, 36 + 12 + 4)  # no mission; a strip of 3 cells below
    from rimrl.sb3.environments import make_env
    from rimrl.sb3.evaluation import play
    from rimrl.learners.ppo import LEARNER, load_model

    cfg = LEARNER.load_config(["env.id=rimrl/CueVector-v0"])
    env = make_env(cfg, n_envs=2, training=False, render_mode="rgb_array")
    _, frames = play(load_model(run / "model.zip"), env, 4, record=True)
    env.close()
    assert len(frames) == 6  # GIF writers merge repeated frames; the recorder keeps all
    assert frames[0][-8, 8].tolist() == [255, 255, 255]  # no step yet: every cell empty
    assert sum(frames[-1][-8, 2 + k * 14 + 6].tolist() == [0, 0, 0] for k in range(3)) == 2


def test_caption_by_hand():
    import numpy as np

    from rimrl.sb3.video import CAPTION_HEIGHT, CELL, caption

    frame = np.full((20, 40, 3), 128, np.uint8)
    out = caption(frame, "pick up the red ball", np.array([True, False]))
    assert out.shape == (CAPTION_HEIGHT + 20 + CELL + 4, 40, 3)
    assert (out[CAPTION_HEIGHT:CAPTION_HEIGHT + 20] == 128).all()  # the frame, unchanged
    strip = out[CAPTION_HEIGHT + 20 + 2 + CELL // 2]
    assert strip[2 + CELL // 2].tolist() == [0, 0, 0]                 # RIM 0 active: filled
    assert strip[2 + CELL + 2 + CELL // 2].tolist() == [255, 255, 255]  # RIM 1: empty
    assert caption(frame, None, None).shape == frame.shape


@pytest.mark.parametrize("content", ["null", "[1, 2]", '{"kind": "ppo", "provenance": [1]}',
                                     '{"kind": "ppo", "resumed_with": {"a": 1}}', "FIFO"])
def test_run_json_of_the_wrong_shape_or_not_a_file_is_one_line(tmp_path, capsys, content):
    """run.json that is null, a list, with provenance or resumed_with of the wrong type, or a
    FIFO in its place (which would block a reader): evaluate, --resume and compare answer in
    one line (compare leaves the run out) and never hang."""
    import os

    from rimrl.cli import main
    from tests.conftest import TINY, only_run

    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--timesteps", "64",
                 "--runs-dir", str(tmp_path / "runs")] + TINY) == 0
    run = only_run(tmp_path / "runs")
    meta = run / "run.json"
    meta.unlink()
    if content == "FIFO":
        os.mkfifo(meta)
    else:
        meta.write_text(content)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--episodes", "1"]) == 2
    assert main(["train", "ppo", "--resume", str(run), "--timesteps", "128"]) == 2
    err = capsys.readouterr().err
    assert err.count("rimrl: error:") == 2 and "Traceback" not in err
    assert "has no readable run.json" in err
    assert main(["compare", str(tmp_path / "runs")]) == 2  # no run left to compare
    assert "is unreadable" in capsys.readouterr().err
