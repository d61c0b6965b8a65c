"""Every ``rimrl`` command in README.md and docs/*.md runs, as written, with only its budget
lowered (marker ``docs``: ~8 minutes, so CI runs it after the default suite) (``--timesteps``, ``--updates``, ``--episodes``; a training command without one gets
one). The pages are run in one folder, in the order below, so an ``evaluate`` finds the run
that an earlier command trained with ``--run-dir``."""

import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/ppo.md", "docs/distractors.md", "docs/nfm-iqn.md", "docs/rims.md",
         "docs/regularizers.md", "docs/sweeps-and-reports.md", "docs/configs.md",
         "docs/benchmarks.md"]
# budget flag -> the value used here
BUDGETS = {"--timesteps": "1024", "--updates": "2", "--episodes": "2"}
# a training command without a budget flag gets this one
DEFAULT_BUDGET = {"ppo": "--timesteps", "iqn": "--timesteps", "copy": "--updates",
                  "supervised": "--updates"}
# commands run by another test instead (they need a Ray cluster or a sweep's runs)
ELSEWHERE = {
    "rimrl sweep configs/sweeps/atari_rims_vs_lstm.yaml":
        "tests/test_sweep.py::test_local_sweep_failure_isolation_and_resume runs a local "
        "sweep end to end (failures, resume, then compare of its runs)",
    "rimrl sweep configs/sweeps/atari_rims_vs_lstm.yaml --address auto":
        "tests/test_sweep.py::test_sweep_joins_an_existing_ray_cluster (slow)",
    "rimrl compare runs/sweeps/atari-rims-vs-lstm":
        "tests/test_sweep.py::test_local_sweep_failure_isolation_and_resume compares a "
        "sweep's runs",
    "rimrl sweep configs/sweeps/pickup_rims_search.yaml":
        "tests/test_search.py::test_a_search_on_ray_stops_weak_trials_and_writes_a_best_"
        "config_that_trains (slow) runs a search end to end; its --dry-run runs here",
    "rimrl train ppo --config runs/sweeps/pickup-rims-search/best_config.yaml --seed 1":
        "the same slow test trains the best config a search wrote",
    "rimrl compare runs/sweeps/pickup-rims-search --by core.k_active":
        "tests/test_sweep.py::test_local_sweep_failure_isolation_and_resume compares a "
        "sweep's runs",
}


def commands(page: str) -> list[str]:
    """``rimrl ...`` commands in the page's bash blocks (comments dropped; a quick-start line
    ``... && rimrl ...`` counts from ``rimrl``)."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", (ROOT / page).read_text(), re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            match = re.search(r"(?:^|&& )(rimrl .*)$", line)
            if match:
                found.append(match.group(1).strip())
    return found


def lowered(command: str) -> list[str]:
    argv = shlex.split(command)
    for i, arg in enumerate(argv[:-1]):
        if arg in BUDGETS:
            argv[i + 1] = BUDGETS[arg]
    if argv[1] == "train" and "--resume" not in argv and not set(argv) & set(BUDGETS):
        argv += [DEFAULT_BUDGET[argv[2]], BUDGETS[DEFAULT_BUDGET[argv[2]]]]
    if argv[1] == "train" and "--resume" in argv:  # a resume continues past the lowered run
        i = argv.index("--timesteps") if "--timesteps" in argv else None
        if i is not None:
            argv[i + 1] = "2048"
    return argv


def test_the_pages_have_commands_and_the_exceptions_exist():
    every = [c for page in PAGES for c in commands(page)]
    assert len(every) >= 20
    assert set(ELSEWHERE) <= set(every)  # no stale exception
    assert commands("README.md")[0] == "rimrl train ppo --env DemonAttack --core rims"


@pytest.mark.docs
def test_every_documented_command_runs(tmp_path):
    (tmp_path / "configs").symlink_to(ROOT / "configs")  # paths as written in the docs
    for page in PAGES:
        for command in commands(page):
            if command in ELSEWHERE:
                continue
            argv = lowered(command)
            done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True,
                                  timeout=600)
            assert done.returncode == 0, f"{page}: {' '.join(argv)}\n{done.stderr[-2000:]}"
            assert "Traceback" not in done.stderr, f"{page}: {' '.join(argv)}"
