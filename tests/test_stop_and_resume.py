"""Stopping and resuming as schedulers and careless users do: SIGTERM and SIGHUP save a
checkpoint like Ctrl-C; a resume at the budget changes nothing; a run killed while writing its
final model is completed by a resume."""

import hashlib
import signal
import subprocess
import sys
import time

import pytest

from rimrl.cli import main
from rimrl.sb3.training import StopOnInterrupt
from rimrl.runs import list_checkpoints
from tests.conftest import TINY, only_run


def tree_hashes(folder):
    """Each file's SHA-256 (a FIFO: its kind; it is never opened)."""
    return {p.relative_to(folder): "fifo" if p.is_fifo()
            else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_fifo()}


def signal_training(argv, cwd, under_way, signum, settle=0.0):
    """Start ``rimrl ARGV`` in a real process, wait until ``under_way`` exists (training has
    begun), send ``signum`` and return (process, stdout, stderr) once it has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from rimrl.cli import main; "
                             "sys.exit(main())", *argv],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not under_way.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.2)
        time.sleep(settle)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc, out, err


def test_resume_at_or_past_the_budget_changes_nothing(tmp_path, capsys):
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
                 "--timesteps", "128", "--runs-dir", str(tmp_path)] + TINY) == 0
    run = only_run(tmp_path)
    before = tree_hashes(run)
    capsys.readouterr()
    for budget in (["--timesteps", "128"], ["--timesteps", "64"], []):
        assert main(["train", "ppo", "--resume", str(run), "--no-progress"] + budget) == 0
        out = capsys.readouterr().out
        assert out.strip().splitlines() == [
            f"rimrl: {run} is already at 128 steps (budget {budget[1] if budget else 128}); "
            "raise --timesteps to continue it"]
        assert tree_hashes(run) == before


def test_resume_completes_a_run_killed_while_writing_its_final_model(tmp_path):
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
                 "--timesteps", "128", "--runs-dir", str(tmp_path)] + TINY) == 0
    run = only_run(tmp_path)
    (run / "model.zip").unlink()
    (run / "train_summary.json").unlink()
    checkpoints = list_checkpoints(run)
    assert main(["train", "ppo", "--resume", str(run), "--no-progress"]) == 0
    assert (run / "model.zip").is_file() and (run / "train_summary.json").is_file()
    assert list_checkpoints(run) == checkpoints


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_termination_signals_save_a_checkpoint_and_print_the_resume_command(tmp_path, signum,
                                                                            code):
    run = tmp_path / "run"
    proc, out, err = signal_training(
        ["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm", "--timesteps",
         "10000000", "--run-dir", str(run), "--no-progress"],
        tmp_path, run / "tb" / "progress.csv", signum)
    assert proc.returncode == code, err
    assert "Traceback" not in err and signal.Signals(signum).name in err
    assert list_checkpoints(run)
    assert f"continue with: rimrl train ppo --resume {run}" in out


def test_a_signal_as_the_logs_are_created_still_stops_cleanly(tmp_path):
    """The window a signal poller sees first: the moment ``tb/progress.csv`` exists. A
    SIGTERM sent right then (here by the logger's own creation, so the timing is exact) is
    handled: a checkpoint, the resume command, exit 143; not a killed process."""
    run = tmp_path / "run"
    code = (
        "import os, signal, sys\n"
        "import rimrl.sb3.logs as logs\n"
        "made = logs.run_logger\n"
        "def run_logger(*args, **kwargs):\n"
        "    logger = made(*args, **kwargs)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return logger\n"
        "logs.run_logger = run_logger\n"
        "from rimrl.cli import main\n"
        "sys.exit(main())\n")
    done = subprocess.run(
        [sys.executable, "-c", code, "train", "ppo", "--env", "rimrl/CueVector-v0", "--core",
         "lstm", "--timesteps", "100000", "--run-dir", str(run), "--no-progress"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 143, done.stderr[-2000:]
    assert f"continue with: rimrl train ppo --resume {run}" in done.stdout
    assert list_checkpoints(run)


def test_exit_code_is_the_shells_for_the_signal():
    stop = StopOnInterrupt()
    assert stop.exit_code == 130  # Ctrl-C's, before any signal
    stop._handle(signal.SIGTERM, None)
    assert stop.requested and stop.exit_code == 143


def test_run_dir_refuses_a_folder_rimrl_did_not_make(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my: own\n")
    (mine / "model.zip").write_bytes(b"my model")
    before = tree_hashes(mine)
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
                 "--timesteps", "64", "--run-dir", str(mine)] + TINY) == 2
    err = capsys.readouterr().err
    assert "is a folder that rimrl did not make" in err and len(err.strip().splitlines()) == 1
    assert tree_hashes(mine) == before and sorted(p.name for p in mine.iterdir()) == [
        "config.yaml", "model.zip"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
                 "--timesteps", "64", "--run-dir", str(empty)] + TINY) == 0


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
                 "--timesteps", "64", "--runs-dir", str(root)] + TINY) == 0
    return only_run(root)


@pytest.mark.parametrize("name, command, message", [
    ("checksums.json", "evaluate", "checksums.json is corrupt, so rimrl cannot tell"),
    ("checksums.json", "resume", "checksums.json is corrupt, so rimrl cannot tell"),
    ("tb/progress.csv", "resume", "progress.csv is corrupt; move it away to resume"),
    ("run.json", "evaluate", "has no readable run.json"),
    ("train_summary.json", "resume", "train_summary.json is corrupt; delete it"),
    ("tb/progress.csv", "compare", "warning: left out"),
    ("run.json", "compare", "warning: left out"),
    ("commit.json", "resume", "commit.json is corrupt (it records the run's last whole"),
    ("evaluations.csv", "resume", "evaluations.csv is corrupt; delete it"),
    ("config.yaml", "resume", "config.yaml is not"),
    ("train_summary.json", "compare", "warning: left out"),
])
@pytest.mark.parametrize("kind", ["garbage", "fifo"])
def test_corrupt_run_files_get_one_line(finished_run, tmp_path, capsys, name, command, message,
                                        kind):
    """Each file a command reads is checked before anything is written: one line, exit 2,
    and a refused resume leaves every file as it was (a FIFO is never opened: no hang)."""
    import os
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    if name != "train_summary.json":
        (run / "train_summary.json").unlink()  # not finished: a resume continues it
    (run / name).unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(run / name)
        message = {"config.yaml": "config.yaml is not a regular file"}.get(name, message)
    else:
        (run / name).write_bytes(b"\x00\xff{garbage")
        message = {"config.yaml": "config.yaml is not a text file"}.get(name, message)
    before = {k: v for k, v in tree_hashes(run).items() if k.name != ".lock"}
    argv = {"evaluate": ["evaluate", str(run), "--episodes", "2", "--no-progress"],
            "resume": ["train", "ppo", "--resume", str(run), "--timesteps", "256",
                       "--no-progress"],
            "compare": ["compare", str(tmp_path), "--no-progress", "--reps", "10"]}[command]
    if command == "compare":  # one good run beside the corrupt one
        shutil.copytree(finished_run, tmp_path / "good")
    code = main(argv)
    err = capsys.readouterr().err
    assert code == (0 if command == "compare" else 2), err
    assert message in err and "Traceback" not in err
    if command != "compare":
        assert len(err.strip().splitlines()) == 1
    assert {k: v for k, v in tree_hashes(run).items() if k.name != ".lock"} == before


def test_a_truncated_config_is_refused_not_filled_with_defaults(finished_run, tmp_path,
                                                                capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "train_summary.json").unlink()
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text[:text.index("eval:") + 8])  # cut mid-line
    before = {k: v for k, v in tree_hashes(run).items() if k.name != ".lock"}
    assert main(["train", "ppo", "--resume", str(run), "--no-progress"]) == 2
    assert "config.yaml is truncated (it ends mid-line)" in capsys.readouterr().err
    assert {k: v for k, v in tree_hashes(run).items() if k.name != ".lock"} == before


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_copy_task_stops_with_a_checkpoint_and_the_resume_command(tmp_path, signum, code):
    run = tmp_path / "run"
    proc, out, err = signal_training(
        ["train", "copy", "--updates", "1000000", "--set", "train.checkpoint_every=100000",
         "--run-dir", str(run), "--no-progress"], tmp_path, run / "tb", signum, settle=1.0)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    (checkpoint,) = list_checkpoints(run)  # the regular one is 100,000 updates away
    assert f"continue with: rimrl train copy --resume {run}" in out
    assert main(["train", "copy", "--resume", str(run), "--updates",
                 str(int(checkpoint.stem.split("_")[1]) + 1), "--no-progress"]) == 0
