"""``rimrl train copy`` and ``rimrl evaluate`` end to end on tiny budgets."""

import json
import subprocess
import sys

import pytest
import torch

from rimrl.cli import main
from rimrl.runs import list_checkpoints
from tests.conftest import TINY_COPY as TINY

def run_dirs(root):
    return sorted(p for p in root.iterdir() if p.is_dir())


@pytest.mark.parametrize("core", ["rims", "lstm", "gru", "none"])
def test_train_copy_writes_a_run(tmp_path, core, capsys):
    assert main(["train", "copy", "--core", core, "--updates", "3", "--runs-dir",
                 str(tmp_path)] + TINY) == 0
    (run,) = run_dirs(tmp_path)
    assert (run / "config.yaml").is_file() and (run / "model.pt").is_file()
    results = json.loads((run / "results.json").read_text())
    assert set(results["gaps"]) == {"4", "8"} and results["core"] == core
    assert [p.name for p in list_checkpoints(run)] == ["ckpt_000000000002.pt",
                                                      "ckpt_000000000003.pt"]
    assert list((run / "tb").iterdir())
    out = capsys.readouterr().out
    assert "CE (nats/step)" in out

    assert main(["evaluate", str(run), "--gaps", "6"]) == 0
    assert set(json.loads((run / "evaluation.json").read_text())["gaps"]) == {"6"}


def test_resume_matches_uninterrupted_run(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", "copy", "--updates", "4", "--runs-dir", str(a)] + TINY) == 0
    assert main(["train", "copy", "--updates", "2", "--runs-dir", str(b)] + TINY) == 0
    (run_b,) = run_dirs(b)
    assert main(["train", "copy", "--resume", str(run_b), "--updates", "4", "--no-progress"]) == 0
    (run_a,) = run_dirs(a)
    wa, wb = torch.load(run_a / "model.pt"), torch.load(run_b / "model.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_wall_time_sums_over_resumed_calls(tmp_path):
    """results.json's seconds is the training time of every call, carried in checkpoints."""
    assert main(["train", "copy", "--updates", "2", "--runs-dir", str(tmp_path)] + TINY) == 0
    (run,) = run_dirs(tmp_path)
    ckpt = list_checkpoints(run)[-1]
    state = torch.load(ckpt, weights_only=False)
    first = state["seconds"]
    assert first > 0
    state["seconds"] = first + 1000.0  # as if the first call had trained 1000 s longer
    torch.save(state, ckpt)
    assert main(["train", "copy", "--resume", str(run), "--updates", "3", "--no-progress"]) == 0
    seconds = json.loads((run / "results.json").read_text())["seconds"]
    # results.json rounds to 0.1 s: a fast first call (0.02 s) may round away
    assert 1000.0 + first - 0.05 <= seconds < 1000.0 + first + 120


def test_resume_refuses_config_changes(tmp_path, capsys):
    assert main(["train", "copy", "--updates", "2", "--runs-dir", str(tmp_path)] + TINY) == 0
    (run,) = run_dirs(tmp_path)
    before = (run / "config.yaml").read_text()
    assert main(["train", "copy", "--resume", str(run), "--core", "lstm"]) == 2
    assert "only these can" in capsys.readouterr().err
    assert (run / "config.yaml").read_text() == before


def test_threads_flag_sets_torch_threads_and_may_change_on_resume(tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert main(["train", "copy", "--updates", "2", "--runs-dir", str(tmp_path),
                     "--threads", "1"] + TINY) == 0
        assert torch.get_num_threads() == 1
        (run,) = run_dirs(tmp_path)
        assert "threads: 1" in (run / "config.yaml").read_text()
        torch.set_num_threads(2)
        assert main(["train", "copy", "--resume", str(run), "--updates", "3", "--threads", "1",
                     "--no-progress"]) == 0
        assert torch.get_num_threads() == 1
        assert main(["train", "copy", "--threads", "-1", "--runs-dir",
                     str(tmp_path / "bad")] + TINY) == 2
        assert "threads must be 0" in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()
    finally:
        torch.set_num_threads(before)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "copy", "--updates", "2", "--runs-dir", str(tmp_path)] + TINY) == 0
    (run,) = run_dirs(tmp_path)
    list_checkpoints(run)[-1].write_bytes(b"not a checkpoint")
    assert main(["train", "copy", "--resume", str(run), "--updates", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rimrl: error: checkpoint") and "corrupt" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--core", "transformer"], "unknown core 'transformer'"),
    (["--set", "core.k_active=7"], "k_active (7) must be between 1 and num_units (6)"),
    (["--set", "core.hidden_size=601"], "not a positive multiple of num_units"),
    (["--set", "train.learning_rat=0.1"], "did you mean 'train.learning_rate'"),
    (["--updates", "-5"], "train.updates must be a positive integer"),
    (["--timesteps", "0"], "budget must be positive"),
    (["--set", "train.learning_rate=fast"], "'train.learning_rate' must be a number"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, args, message):
    code = main(["train", "copy", "--runs-dir", str(tmp_path / "runs")] + args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing created for a bad command


def test_evaluate_missing_run(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_console_script_help_and_usage_errors():
    ok = subprocess.run([sys.executable, "-m", "rimrl", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "train" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "rimrl", "train", "cop"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr


def test_resume_removes_torn_temporary_files(tmp_path, capsys):
    """A kill during an atomic write leaves '.<name>.<random>.tmp'; resume deletes it."""
    assert main(["train", "copy", "--updates", "2", "--run-dir", str(tmp_path / "r"),
                 "--no-progress"] + TINY) == 0
    torn = [tmp_path / "r" / "checkpoints" / ".ckpt_000000000004.pt.abc123.tmp",
            tmp_path / "r" / ".model.pt.x1.tmp"]
    for path in torn:
        path.write_bytes(b"half a file")
    assert main(["train", "copy", "--resume", str(tmp_path / "r"), "--updates", "3",
                 "--no-progress"]) == 0
    assert not any(path.exists() for path in torn)
    assert "removed 2 torn temporary file(s)" in capsys.readouterr().out


def test_checkpoints_load_without_running_code(tmp_path, capsys):
    """A crafted pickle in a checkpoint (or a checkpoint without the expected keys) is a
    one-line error; its code never runs."""
    import pickle

    assert main(["train", "copy", "--updates", "2", "--run-dir", str(tmp_path / "r"),
                 "--no-progress"] + TINY) == 0
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    ckpt = list_checkpoints(tmp_path / "r")[-1]
    import torch
    torch.save({"model": Exploit()}, ckpt, pickle_module=pickle)
    capsys.readouterr()
    assert main(["train", "copy", "--resume", str(tmp_path / "r"), "--updates", "3"]) == 2
    assert "corrupt or not a rimrl checkpoint" in capsys.readouterr().err
    assert not marker.exists()
    torch.save({"weights": {}}, ckpt)
    assert main(["train", "copy", "--resume", str(tmp_path / "r"), "--updates", "3"]) == 2
    assert "lacks model" in capsys.readouterr().err
