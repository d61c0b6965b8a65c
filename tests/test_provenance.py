"""Provenance: what run.json records of the code that made a run, and compare's warning."""

import json


from rimrl.cli import main
from rimrl.provenance import PACKAGES, differences, git_state
from tests.conftest import TINY, only_run
from tests.test_compare import CURVES, write_run


def test_new_and_resumed_runs_record_the_code(tmp_path, monkeypatch):
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
                 "--timesteps", "64", "--runs-dir", str(tmp_path), "--threads", "1"] + TINY) == 0
    run = only_run(tmp_path)
    record = json.loads((run / "run.json").read_text())["provenance"]
    import platform
    from importlib.metadata import version

    assert record["torch"] == version("torch") and record["minigrid"] == version("minigrid")
    assert record["python"] == platform.python_version()
    assert set(PACKAGES) <= set(record) and record["rimrl"] == "0.1.0"
    assert (record["device"], record["threads"]) == ("cpu", 1)
    assert len(record["commit"]) == 40 and isinstance(record["dirty"], bool)  # a checkout
    monkeypatch.setattr("rimrl.provenance.PACKAGES", ("torch", "no-such-package"))
    assert main(["train", "ppo", "--resume", str(run), "--timesteps", "128",
                 "--no-progress"]) == 0
    meta = json.loads((run / "run.json").read_text())
    assert meta["provenance"] == record  # the run's origin stays
    assert meta["resumed_with"][0]["no-such-package"] is None


def test_git_state_outside_a_checkout(tmp_path):
    assert git_state(tmp_path) == {}


def test_differences_name_code_fields_only():
    a = {"commit": "x", "torch": "2.13.0", "device": "cpu", "threads": 1}
    b = {"commit": "x", "torch": "2.12.0", "device": "cuda", "threads": 8}
    assert differences([a, b]) == {"torch": ["2.12.0", "2.13.0"]}
    assert differences([a, dict(a)]) == {}
    assert differences([a, {}]) == {"commit": ["None", "x"], "torch": ["2.13.0", "None"]}


def test_compare_warns_when_a_group_mixes_versions(tmp_path, capsys):
    env = "rimrl/CueVector-v0"
    for seed, torch_version in ((0, "2.13.0"), (1, "2.12.0")):
        write_run(tmp_path, env, "rims", seed, CURVES[env]["rims"][seed])
        run = tmp_path / f"{env.replace('/', '-')}-rims-s{seed}"
        (run / "run.json").write_text(json.dumps(
            {"kind": "ppo", "provenance": {"torch": torch_version, "commit": "abc"}}))
    assert main(["compare", str(tmp_path), "--reps", "10", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "rimrl/CueVector-v0 / rims: its runs come from different code or libraries " \
           "(torch: 2.12.0, 2.13.0)" in err
