"""Knobs checked by construction: Hypothesis draws a declared config key of every learner and
a hostile value for it (wrong types, lists, dicts, NaN, 1e30, negatives, empty, unicode,
newlines) and the config must either load and pass the learner's checks (which build one
env) or be refused with one ``UserError`` line: never another exception. A bounded number of
examples in the default suite; many more with ``-m slow``."""

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
