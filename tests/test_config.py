"""Typed configs: YAML loading, overrides, unknown keys and types."""

from dataclasses import dataclass, field
from typing import Optional

import pytest

from rimrl.config import (ConfigError, config_dir, from_dict, load_config, parse_override,
                          read_yaml, save_config)
from rimrl.tasks.copying import CopyConfig


@dataclass
class Inner:
    lr: float = 0.1
    steps: int = 3
    gaps: list[int] = field(default_factory=lambda: [1])
    name: Optional[str] = None


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    flag: bool = False


def test_parse_override_uses_yaml_scalars():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("lr=1e-3") == (["lr"], 0.001)
    assert parse_override("gaps=[50, 200]") == (["gaps"], [50, 200])
    assert parse_override("name=__import__('os')") == (["name"], "__import__('os')")
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("novalue")


def test_unknown_key_names_nearest():
    with pytest.raises(ConfigError, match=r"unknown config key 'inner.stpes'; did you mean 'inner.steps'"):
        from_dict(Outer, {"inner": {"stpes": 4}})


def test_types_are_checked_and_coerced():
    cfg = from_dict(Outer, {"inner": {"lr": 1, "steps": 4.0, "gaps": 7}, "flag": True})
    assert cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    assert cfg.inner.steps == 4 and cfg.inner.gaps == [7]
    with pytest.raises(ConfigError, match="'inner.steps' must be an integer"):
        from_dict(Outer, {"inner": {"steps": "many"}})
    with pytest.raises(ConfigError, match="'flag' must be true or false"):
        from_dict(Outer, {"flag": "yes please"})


def test_load_config_files_then_overrides(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text("inner:\n  lr: 0.5\n  steps: 9\n")
    b = tmp_path / "b.yaml"
    b.write_text("inner:\n  steps: 10\n")
    cfg = load_config(Outer, [a, b], ["inner.name=x", "flag=true"])
    assert (cfg.inner.lr, cfg.inner.steps, cfg.inner.name, cfg.flag) == (0.5, 10, "x", True)


def test_sections_layer_over_default(tmp_path):
    f = tmp_path / "f.yaml"
    f.write_text("default:\n  inner: {lr: 0.5, steps: 1}\natari:\n  inner: {steps: 8}\n")
    cfg = load_config(Outer, [f], section="atari")
    assert (cfg.inner.lr, cfg.inner.steps) == (0.5, 8)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(CopyConfig, [config_dir() / "copy.yaml"], ["core.name=lstm"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(CopyConfig, [tmp_path / "config.yaml"])
    assert again == cfg and again.core.name == "lstm"


def test_bad_yaml_is_a_config_error(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(f)
    with pytest.raises(ConfigError, match="does not exist"):
        read_yaml(tmp_path / "missing.yaml")


def test_copy_defaults_file_matches_paper_values():
    cfg = load_config(CopyConfig, [config_dir() / "copy.yaml"])
    assert (cfg.core.num_units, cfg.core.k_active, cfg.core.hidden_size) == (6, 4, 600)
    assert (cfg.core.input_heads, cfg.core.input_key_size) == (1, 64)
    assert (cfg.core.comm_heads, cfg.core.comm_key_size, cfg.core.comm_value_size) == (4, 32, 32)
    assert (cfg.task.train_gap, cfg.task.eval_gaps) == (50, [50, 200])


def test_renamed_keys_still_load_with_one_note(capsys):
    """One spelling of the learning rate (``learning_rate``) and IQN's n-step return named
    for what it is; the old keys (in old run directories' config.yaml, or typed from habit)
    load into the new fields, with one note per key naming the new spelling."""
    import rimrl.config as config_module
    from rimrl import learners

    config_module._NOTED_RENAMES.clear()
    copy = learners.get("copy").load_config(["train.lr=0.0005"])
    assert copy.train.learning_rate == 0.0005
    sup = learners.get("supervised").load_config(["train.lr=0.02", "train.lr=0.01"])
    assert sup.train.learning_rate == 0.01
    iqn = learners.get("iqn").load_config(["iqn.n_steps=5"])
    assert iqn.iqn.n_step_return == 5
    err = capsys.readouterr().err.splitlines()
    assert err == ["rimrl: note: config key 'train.lr' is now 'train.learning_rate'; the old "
                   "name still works",
                   "rimrl: note: config key 'iqn.n_steps' is now 'iqn.n_step_return'; the old "
                   "name still works"]
    assert learners.get("copy").load_config([]).train.learning_rate == 1e-3
    assert capsys.readouterr().err == ""
