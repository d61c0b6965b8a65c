"""Knobs checked by construction: Hypothesis draws a declared config key of every learner and
a hostile value for it (wrong types, lists, dicts, NaN, 1e30, negatives, empty, unicode,
newlines) and the config must either load and pass the learner's checks (which build one
env) or be refused with one ``UserError`` line: never another exception. The commands
``evaluate``, ``compare`` and ``sweep --dry-run`` get hostile flags and sweep files and must
end in exit 0, 2 or 74 without a traceback and without changing the run they read. A
bounded number of examples in the default suite; many more with ``-m slow``."""

import dataclasses
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rimrl.errors import UserError
from rimrl.learners import get

#: a small run of each learner, so a valid draw is checked quickly
BASE = {
    "ppo": ["env.id=rimrl/CueVector-v0", "env.n_envs=2"],
    "iqn": ["env.id=rimrl/CueVector-v0", "policy.encoder=mlp"],
    "copy": [],
    "supervised": [],
}
HOSTILE = ["-1", "0", "1", "-0.0", "3.5", "1e30", "-1e30", "1e400", "nan", ".nan", ".inf",
           "-.inf", "99999999999999999999", "''", "null", "true", "[]", "[1, 2]", "{}",
           "{a: 1}", "'é中'", "\"a\\nb\"", "x\u2028y", "[[[]]]", "rims", "train", "auto",
           "'-1'", "0x10", "1_000"]


def config_keys(cls, prefix: str = "") -> list[str]:
    """Every dotted key of a (nested) config dataclass."""
    keys = []
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        kind = hints.get(field.name)
        if dataclasses.is_dataclass(kind):
            keys += config_keys(kind, f"{prefix}{field.name}.")
        else:
            keys.append(prefix + field.name)
    return keys


def check(learner_name: str, key: str, value: str) -> None:
    """Loads and passes, or a UserError (the CLI prints it as one line, exit 2)."""
    learner = get(learner_name)
    try:
        config = learner.load_config(BASE[learner_name] + [f"{key}={value}"])
        learner.check(config)
    except UserError:
        return  # refused in one line: what a bad value should get


def draws(learner_name: str):
    keys = config_keys(get(learner_name).config_class())
    return st.tuples(st.sampled_from(keys), st.one_of(
        st.sampled_from(HOSTILE), st.integers(-10**12, 10**12).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.text(max_size=8).map(lambda t: repr(t))))


@pytest.mark.parametrize("learner_name", list(BASE))
def test_hostile_values_are_loaded_or_refused_in_one_line(learner_name):
    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(draws(learner_name))
    def run(draw):
        check(learner_name, *draw)

    run()


@pytest.mark.slow
@pytest.mark.parametrize("learner_name", list(BASE))
def test_hostile_values_many_examples(learner_name):
    @settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
    @given(draws(learner_name))
    def run(draw):
        check(learner_name, *draw)

    run()


def test_an_error_echoing_a_typed_newline_still_prints_one_line(tmp_path, capsys):
    """A value with a line break (or another control character) in an error message is
    shown escaped: the message cannot print a second line that reads like a command."""
    from rimrl.cli import main
    from rimrl.errors import one_line

    assert one_line("run dir 'a\nrm -rf ~/x'\u2028\t") == "run dir 'a\\nrm -rf ~/x'\\u2028\\t"
    assert one_line("é中 ok") == "é中 ok"
    # YAML reads \n inside double quotes as a line break
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--runs-dir", str(tmp_path),
                 "--set", r'env.backend="a\nrm -rf ~"']) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rimrl: error: ") and "a\\nrm" in err


# ---------------------------------------------------------------------- commands, whole
#: what a command that succeeds may write into the run it reads
OUTPUTS = ("evaluation.json", "distractors.json", "probe_", "videos")
SWEEP_KEYS = ("command", "name", "runs_dir", "grid", "overrides", "resources",
              "max_concurrent", "evaluate", "grid.seed", "grid.core.name",
              "overrides.train.timesteps", "overrides.ppo.n_steps", "evaluate.episodes",
              "evaluate.distractors", "resources.cpu")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from rimrl.cli import main
    from tests.conftest import TINY, only_run

    root = tmp_path_factory.mktemp("fuzz-runs")
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
                 "--timesteps", "64", "--runs-dir", str(root), "--eval-every", "64",
                 "--set", "eval.episodes=2"] + TINY) == 0
    return only_run(root)


def options(command: str) -> list:
    """The flags of ``rimrl COMMAND`` with whether each takes a value."""
    import argparse

    from rimrl.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return [(a.option_strings[-1], a.nargs != 0) for a in sub.choices[command]._actions
            if a.option_strings and a.option_strings[-1] not in ("--help", "--quiet")]


def files(folder):
    from tests.test_stop_and_resume import tree_hashes

    return tree_hashes(folder)


def run_command(argv, watched, capsys) -> int:
    """``rimrl ARGV`` ends in 0, 2 or 74 with no traceback, one line on a refusal, and leaves
    the ``watched`` run as it was but for the outputs a success writes."""
    from rimrl.cli import main

    before = files(watched)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals (usage line and error)
        code = exc.code
    err = capsys.readouterr().err
    assert code in (0, 2, 74), (argv, err)
    assert "Traceback" not in err, (argv, err)
    if code != 0 and "usage:" not in err:
        assert len(err.strip().splitlines()) == 1, (argv, err)
    changed = {k for k in before.keys() | files(watched).keys()
               if before.get(k) != files(watched).get(k)}
    allowed = OUTPUTS if code == 0 else ()
    assert all(str(k).startswith(allowed) for k in changed), (argv, changed)
    return code


def command_draws(command: str):
    flags = options(command)
    value = st.sampled_from(HOSTILE)
    return st.lists(st.tuples(st.sampled_from(flags), value), min_size=1, max_size=3)


def to_argv(draw) -> list[str]:
    argv = []
    for (flag, takes_value), value in draw:
        argv += [flag, value] if takes_value else [flag]
    return argv


def sweep_file(folder, key: str, value: str) -> str:
    """A small valid sweep with ``key`` set to the YAML ``value``."""
    import yaml

    sweep = {"command": "ppo", "name": "fuzz", "runs_dir": str(folder / "sweeps"),
             "grid": {"seed": [0, 1], "core.name": ["lstm"]},
             "overrides": {"env.id": "rimrl/CueVector-v0", "train.timesteps": 64},
             "evaluate": {"episodes": 2}}
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    head, _, rest = key.partition(".")
    if rest:
        section = sweep.setdefault(head, {})
        if isinstance(section, dict):
            section[rest] = parsed
    else:
        sweep[head] = parsed
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, allow_unicode=True))
    return str(path)


@pytest.mark.parametrize("command", ["evaluate", "compare", "sweep"])
def test_hostile_command_lines_end_cleanly(command, finished_run, tmp_path, monkeypatch,
                                           capsys):
    """Flags of ``evaluate`` and ``compare`` and the keys of a ``sweep --dry-run`` file, given
    hostile values: exit 0, 2 or 74, no traceback, the run left as it was."""
    fuzz_command(command, finished_run, tmp_path, monkeypatch, capsys, examples=25)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["evaluate", "compare", "sweep"])
def test_hostile_command_lines_many_examples(command, finished_run, tmp_path, monkeypatch,
                                             capsys):
    fuzz_command(command, finished_run, tmp_path, monkeypatch, capsys, examples=300,
                 derandomize=False)


def fuzz_command(command, finished_run, tmp_path, monkeypatch, capsys, examples: int,
                 derandomize: bool = True) -> None:
    monkeypatch.chdir(tmp_path)  # a value naming a folder lands here
    examples = settings(max_examples=examples, deadline=None, derandomize=derandomize,
                        suppress_health_check=list(HealthCheck))
    if command == "sweep":
        @examples
        @given(st.sampled_from(SWEEP_KEYS), st.sampled_from(HOSTILE))
        def run(key, value):
            run_command(["sweep", sweep_file(tmp_path, key, value), "--dry-run", "-q"],
                        finished_run, capsys)
    else:
        target = finished_run if command == "evaluate" else finished_run.parent

        @examples
        @given(command_draws(command))
        def run(draw):
            run_command([command, str(target), *to_argv(draw), "--no-progress"],
                        finished_run, capsys)
    run()
