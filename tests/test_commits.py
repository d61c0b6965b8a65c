"""The commit record and recovery (:mod:`rimrl.commits`) on hand-made run folders: what a
resume keeps, cuts, deletes and publishes; the record's schema; the crash switch's count."""

import json
import os

import pytest

from rimrl import faults
from rimrl.commits import (Commit, committed_checkpoint, count_rows, keep_rows, read_commit,
                           recover)
from rimrl.errors import UserError
from rimrl.runs import (EVAL_COLUMNS, read_evaluations, read_run_text, record_checksum,
                        sha256, write_evaluations)

ROW = dict(zip(EVAL_COLUMNS, (20, "train", 4, False, 0.5, 0.15, 0.85, 1.0, 0.0, 2.0, 0.1)))


def make_run(tmp_path):
    """A run folder as a kill after the commit at step 20 (and in the iteration after it)
    leaves it: two committed checkpoints, one past the commit, a staged best model the
    commit names and one it does not, two replay memories, rows past the commit."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "tb").mkdir()
    for name in ("ckpt_000000000010.zip", "ckpt_000000000020.zip", "ckpt_000000000030.zip",
                 "best_000000000020.zip", "best_000000000030.zip",
                 "replay_000000000020.npz", "replay_000000000030.npz"):
        (run / "checkpoints" / name).write_bytes(name.encode())
        record_checksum(run, run / "checkpoints" / name)
    (run / "tb" / "progress.csv").write_text("a,step\n1,10\n2,20\n3,30\n4,3")  # torn last
    write_evaluations(run, [ROW, dict(ROW, step=30)])
    staged = run / "checkpoints" / "best_000000000020.zip"
    Commit(step=20, checkpoint="ckpt_000000000020.zip", progress_rows=2, evaluation_rows=1,
           best_sha256=sha256(staged), best_staged=staged.name,
           replay="replay_000000000020.npz").write(run)
    return run


def test_recover_restores_exactly_the_last_commit(tmp_path):
    run = make_run(tmp_path)
    commit = recover(run)
    assert commit.step == 20
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "ckpt_000000000010.zip", "ckpt_000000000020.zip", "replay_000000000020.npz"]
    assert (run / "best_model.zip").read_bytes() == b"best_000000000020.zip"
    assert (run / "tb" / "progress.csv").read_text() == "a,step\n1,10\n2,20\n"
    # byte for byte: the CSV writer's line ends are kept
    text = read_run_text(run / "evaluations.csv", newline="")
    assert text.count("\r\n") == 2 and read_evaluations(run) == [ROW]
    checksums = json.loads((run / "checksums.json").read_text())
    assert set(checksums) == {"checkpoints/ckpt_000000000010.zip",
                              "checkpoints/ckpt_000000000020.zip",
                              "checkpoints/replay_000000000020.npz", "best_model.zip"}
    assert checksums["best_model.zip"] == sha256(run / "best_model.zip")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert recover(run) == commit  # repeating it changes nothing
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_a_commit_without_a_checkpoint_starts_the_run_over(tmp_path):
    run = make_run(tmp_path)
    Commit().write(run)  # what a new run writes before its first iteration
    commit = recover(run)
    assert commit.checkpoint is None and committed_checkpoint(run) is None
    assert not list((run / "checkpoints").iterdir())
    assert (run / "tb" / "progress.csv").read_text() == "a,step\n"
    assert not (run / "best_model.zip").exists()


def test_a_run_from_before_records_resumes_from_its_newest_checkpoint(tmp_path):
    run = make_run(tmp_path)
    (run / "commit.json").unlink()
    commit = recover(run)
    assert (commit.step, commit.checkpoint) == (30, "ckpt_000000000030.zip")
    assert commit.progress_rows is None  # its logs are cut by step, as before records
    assert committed_checkpoint(run).name == "ckpt_000000000030.zip"


def test_a_missing_committed_checkpoint_is_one_line(tmp_path):
    run = make_run(tmp_path)
    (run / "checkpoints" / "ckpt_000000000020.zip").unlink()
    with pytest.raises(UserError, match="ckpt_000000000020.zip is missing, yet .*commit.json"):
        recover(run)


@pytest.mark.parametrize("text", [
    "", "null", "[]", "{}", '{"step": 1}',
    json.dumps(dict(Commit().__dict__, step=-1)),
    json.dumps(dict(Commit().__dict__, step=True)),
    json.dumps(dict(Commit().__dict__, step=1.5)),
    json.dumps(dict(Commit().__dict__, checkpoint="../../etc/passwd")),
    json.dumps(dict(Commit().__dict__, checkpoint=".hidden")),
    json.dumps(dict(Commit().__dict__, replay=3)),
    json.dumps(dict(Commit().__dict__, extra=1)),
])
def test_a_corrupt_record_is_refused_in_one_line(tmp_path, text):
    (tmp_path / "commit.json").write_text(text)
    with pytest.raises(UserError, match="commit.json is corrupt .* delete it"):
        read_commit(tmp_path)


def test_a_fifo_in_place_of_the_record_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "commit.json")
    with pytest.raises(UserError, match="commit.json is corrupt"):
        read_commit(tmp_path)  # would block forever if it were opened


def test_rows_are_counted_and_cut_whole(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("h\n1\n2\n3")
    assert count_rows(path) == 2  # the torn "3" is not a row
    keep_rows(path, 5)
    assert path.read_text() == "h\n1\n2\n"  # only the torn row goes
    keep_rows(path, 1)
    assert path.read_text() == "h\n1\n"
    assert count_rows(tmp_path / "absent.csv") == 0


def test_write_points_are_counted_and_logged(tmp_path, monkeypatch):
    from rimrl.runs import write_json

    log = tmp_path / "writes.txt"
    monkeypatch.setenv(faults.LOG_VARIABLE, str(log))
    monkeypatch.setattr(faults, "_count", 0)
    write_json(tmp_path / "a.json", {})
    assert [line.split("\t")[:2] for line in log.read_text().splitlines()] == [
        ["1", "write"], ["2", "rename"]]
    monkeypatch.setenv(faults.CRASH_VARIABLE, "4")
    assert [faults.write_point("x", "p") for _ in range(3)] == [False, True, False]


@pytest.mark.parametrize("change", [
    {"step": -1}, {"episodes": 0}, {"split": ""}, {"success_rate": 1.5},
    {"success_lo": 0.9}, {"success_hi": 0.2}, {"return_mean": float("nan")}, {"seconds": -1},
])
def test_evaluation_rows_out_of_range_are_refused(tmp_path, change):
    write_evaluations(tmp_path, [dict(ROW, **change)])
    with pytest.raises(UserError, match="evaluations.csv is corrupt"):
        read_evaluations(tmp_path)


@pytest.mark.parametrize("text", [
    "[]", '{"env": "x"}', '{"timesteps": "12", "env": "x"}', '{"timesteps": -1, "env": "x"}',
    '{"timesteps": true, "env": "x"}', '{"timesteps": 1, "env": 3}',
    '{"timesteps": 1, "env": "x", "seconds": -2}',
    '{"timesteps": 1, "env": "x", "recent_episode_scores": ["a"]}',
    '{"timesteps": 1, "env": "x", "diverged": 1}',
])
def test_a_summary_of_the_wrong_shape_is_refused(tmp_path, text):
    from rimrl.runs import RunSummary

    (tmp_path / "train_summary.json").write_text(text)
    with pytest.raises(UserError, match="train_summary.json is corrupt"):
        RunSummary.read(tmp_path)


@pytest.mark.parametrize("text", ["[1", "[]", '{"model.zip": 3}', '{"model.zip": "abc"}'])
def test_checksums_of_the_wrong_shape_are_refused(tmp_path, text):
    from rimrl.runs import read_checksums

    (tmp_path / "checksums.json").write_text(text)
    with pytest.raises(UserError, match="checksums.json is corrupt"):
        read_checksums(tmp_path)
