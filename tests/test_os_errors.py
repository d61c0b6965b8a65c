"""The operating system refusing a file (disk full, read-only, path too long) ends a command
with one line naming the file and what to do, exit code 74 (``EXIT_OS_ERROR``), and no
computed result lost: an evaluation that cannot be written is printed on stdout.

The disk-full and read-only cases use a real small tmpfs; where mounting is not allowed
(no root, a locked-down container) they skip. The in-process cases run everywhere."""

import errno
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from rimrl.cli import main
from rimrl.errors import EXIT_OS_ERROR, describe_os_error

PPO = ["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
       "--set", "core.hidden_size=12", "--set", "policy.features_dim=16",
       "--set", "ppo.n_steps=32", "--set", "ppo.batch_size=32", "--set", "ppo.chunk_length=8",
       "--set", "ppo.n_epochs=1", "--set", "train.checkpoint_every=64", "--n-envs", "2",
       "--no-progress"]


def only_run(root: Path) -> Path:
    (run,) = [p for p in root.iterdir() if p.is_dir()]
    return run


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (mounted, then unmounted); skips where mounting is not allowed."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_os_errors_are_described_in_one_line():
    full = describe_os_error(OSError(errno.ENOSPC, "No space left on device", "/r/model.zip"))
    assert full.startswith("No space left on device: /r/model.zip: the disk is full")
    long = describe_os_error(OSError(errno.ENAMETOOLONG, "File name too long", "x" * 1000))
    assert "choose a shorter --runs-dir" in long and len(long) < 400 and "\n" not in long
    assert "read-only" in describe_os_error(OSError(errno.EROFS, "Read-only file system", "f"))
    assert "(no file named)" in describe_os_error(OSError(errno.EIO, "I/O error"))


def test_a_path_too_long_is_one_line_and_leaves_nothing(tmp_path, capsys):
    code = main(PPO + ["--timesteps", "64", "--run-dir", str(tmp_path / ("r" * 300))])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_OS_ERROR, err
    assert err.count("\n") == 0 and "choose a shorter --runs-dir or --run-dir" in err
    assert not list(tmp_path.iterdir())


def test_disk_full_during_training_is_one_line_and_the_run_resumes(small_disk, tmp_path,
                                                                  capsys):
    # the checkpoint of a small net fits; a 1 MiB disk fills after a few of them
    code = main(PPO + ["--timesteps", "100000", "--runs-dir", str(small_disk),
                       "--set", "train.keep_checkpoints=1000"])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_OS_ERROR, err
    assert err.count("\n") == 0 and "the disk is full" in err and "Traceback" not in err
    run = only_run(small_disk)
    moved = tmp_path / run.name  # the user frees space: the run moves to a larger disk
    shutil.copytree(run, moved)
    assert main(["train", "ppo", "--resume", str(moved), "--timesteps", "256",
                 "--no-progress"]) == 0
    assert json.loads((moved / "train_summary.json").read_text())["timesteps"] >= 256


def test_evaluate_on_a_read_only_run_prints_what_it_computed(small_disk, capsys):
    assert main(PPO + ["--timesteps", "64", "--runs-dir", str(small_disk)]) == 0
    run = only_run(small_disk)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    capsys.readouterr()
    code = main(["evaluate", str(run), "--episodes", "3", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == EXIT_OS_ERROR, err
    assert "read-only" in err and err.strip().count("\n") == 0
    result = json.loads(out[out.index("{"):])  # the evaluation, not lost
    assert result["episodes"] == 3 and len(result["scores"]) == 3


def test_a_failed_result_write_prints_the_result(tmp_path, monkeypatch, capsys):
    """In-process (no mount needed): the evaluation file's write fails with EROFS."""
    import rimrl.runs

    assert main(PPO + ["--timesteps", "64", "--runs-dir", str(tmp_path)]) == 0
    run = only_run(tmp_path)
    before = sorted(p.name for p in run.iterdir())
    real = rimrl.runs.atomic_write

    def refuse(path, write):
        if Path(path).name == "evaluation.json":
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, write)

    monkeypatch.setattr(rimrl.runs, "atomic_write", refuse)
    capsys.readouterr()
    code = main(["evaluate", str(run), "--episodes", "2", "--video", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == EXIT_OS_ERROR
    assert "evaluation.json: the file system is read-only" in err
    assert json.loads(out[out.index("{"):])["episodes"] == 2
    assert "evaluation.json" not in sorted(p.name for p in run.iterdir()) + before


def test_a_video_that_cannot_be_written_does_not_cost_the_evaluation(tmp_path, monkeypatch,
                                                                     capsys):
    import rimrl.sb3.video as video

    assert main(PPO + ["--timesteps", "64", "--runs-dir", str(tmp_path)]) == 0
    run = only_run(tmp_path)

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "episode_0.gif")

    from PIL import Image
    monkeypatch.setattr(Image.Image, "save", full)
    assert video.write_gif([None, __import__("numpy").zeros((4, 4, 3), "uint8")],
                           tmp_path / "x.gif") is None
    assert "video not written" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--episodes", "2", "--video", "--no-progress"]) == 0
    result = json.loads((run / "evaluation.json").read_text())
    assert result["episodes"] == 2 and "video" not in result
