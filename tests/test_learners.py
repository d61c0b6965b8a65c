"""The learners registry (rimrl.learners): one list of learners that the CLI, sweeps,
evaluation and reports read; each default written once; family sections chosen inside
config loading; one check of RIMs settings; the cores' new attribute names."""

import copy
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from rimrl import learners
from rimrl.cli import build_parser, main
from rimrl.config import config_dir, read_yaml, to_dict
from rimrl.errors import UserError


def leaves(mapping, prefix=""):
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def lookup(mapping, key):
    for part in key.split("."):
        if not isinstance(mapping, dict) or part not in mapping:
            return KeyError
        mapping = mapping[part]
    return mapping


def test_registry_lists_each_learner_once_and_the_cli_reads_it():
    assert learners.names() == ["ppo", "iqn", "copy", "supervised"]
    train = next(a for a in build_parser()._subparsers._group_actions[0].choices["train"]
                 ._subparsers._group_actions)
    assert list(train.choices) == learners.names()
    with pytest.raises(UserError, match="unknown learner 'pp'; did you mean 'ppo'"):
        learners.get("pp")
    assert [l.name for l in learners.all_learners() if l.sweepable] == ["ppo", "iqn"]
    assert {l.name: l.group_key for l in learners.all_learners() if l.group_key} == {
        "ppo": "core.name", "iqn": "policy.encoder"}
    # the flags every train command has (--seed, --device, --runs-dir, --threads) set keys
    # that every run config inherits
    from rimrl.config import RunSettings
    assert all(issubclass(l.config_class(), RunSettings) for l in learners.all_learners())


@pytest.mark.parametrize("name", learners.names())
def test_each_default_is_written_once(name):
    """A defaults file changes defaults, it never restates them: its ``default`` section is
    empty and no family value equals the value the config class already gives."""
    learner = learners.get(name)
    base = to_dict(learner.config_class()())
    raw = read_yaml(config_dir() / learner.defaults_file)
    sections = {k: v for k, v in raw.items() if k != "default"} if "default" in raw else {}
    assert raw.get("default", {}) == {} and (sections or raw == {}), raw
    for section, body in sections.items():
        for key, value in leaves(body or {}):
            assert lookup(base, key) is not KeyError, f"{section}: unknown key {key}"
            assert lookup(base, key) != value, f"{name} {section}: {key} restates {value!r}"


def test_the_family_section_follows_the_env_however_it_is_given():
    ppo = learners.get("ppo")
    by_set = ppo.load_config(["env.id=rimrl/Pickup-v0"])
    assert by_set.env.n_envs == 16 and by_set.core.hidden_size == 192  # the grid section
    # the config class' own core (the paper's Atari RIMs) with the section's LSTM dynamics
    assert by_set.core.dynamics == "lstm" and by_set.core.name == "rims"
    atari = ppo.load_config([])
    assert atari.core.dynamics == "gru"  # the paper's Atari RIMs
    assert atari.env.id == "DemonAttack" and atari.core.compile is True  # atari section
    assert ppo.load_config(["env.id=CartPole-v1"]).ppo.clip_schedule == "constant"  # gym
    # a nested default made by the parent class survives a partial override
    iqn = learners.get("iqn").load_config(["env.id=CartPole-v1"])
    assert iqn.env.n_envs == 1 and iqn.policy.hidden_size == 128


def test_print_config_shows_the_resolved_config_and_writes_nothing(tmp_path, capsys,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "ppo", "--env", "rimrl/Pickup-v0", "--seed", "4", "--set",
                 "ppo.n_epochs=2", "--print-config"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    expected = learners.get("ppo").load_config(
        ["env.id=rimrl/Pickup-v0", "seed=4", "ppo.n_epochs=2"])
    assert shown == to_dict(expected) and shown["core"]["hidden_size"] == 192
    assert list(tmp_path.iterdir()) == []


def test_a_learner_rule_refuses_the_config_before_anything_is_written(tmp_path, capsys):
    """The env-family rule lives in the learner: train, sweep and --dry-run all refuse."""
    with pytest.raises(UserError, match="IQN takes image or vector observations"):
        learners.get("iqn").load_config(["env.id=BabyAI-GoToObj-v0"])
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "command": "iqn", "name": "s", "runs_dir": str(tmp_path / "sweeps"),
        "grid": {"env.id": ["BabyAI-GoToObj-v0"], "seed": [0, 1]}}))
    for dry in ([], ["--dry-run"]):
        assert main(["sweep", str(sweep)] + dry) == 2
        err = capsys.readouterr().err
        assert "IQN takes image or vector observations" in err and "trial env.id=" in err
    assert not (tmp_path / "sweeps").exists()


def test_rims_settings_have_one_check_and_one_message():
    from rimrl.nn.cores import CoreConfig
    from rimrl.nn.rims import RIMCell

    with pytest.raises(ValueError) as cell:
        RIMCell(8, 12, num_units=6, k_active=7)
    with pytest.raises(UserError) as config:
        CoreConfig(name="rims", hidden_size=12, num_units=6, k_active=7)
    assert str(config.value) == f"core.{cell.value}"
    assert "k_active (7) must be between 1 and num_units (6)" in str(cell.value)
    with pytest.raises(UserError, match="core.comm_key_size must be positive"):
        CoreConfig(name="rims", hidden_size=12, num_units=6, comm_key_size=0)


def test_models_saved_with_the_core_named_lstm_actor_still_load(tmp_path):
    """Cores are ``core_actor``/``core_critic`` now; round 1 and 2 models saved them as
    sb3-contrib's ``lstm_actor``/``lstm_critic``."""
    from rimrl.sb3.environments import make_env
    from rimrl.learners.ppo import build_model, load_model

    cfg = learners.get("ppo").load_config([
        "env.id=rimrl/CueVector-v0", "env.n_envs=2", "ppo.n_steps=8", "ppo.batch_size=8",
        "ppo.chunk_length=8", "core.name=gru", "core.hidden_size=8",
        "policy.features_dim=8", "policy.enable_critic_lstm=true"])
    model = build_model(cfg, make_env(cfg))
    names = list(model.policy.state_dict())
    assert any(n.startswith("core_actor.") for n in names)
    assert any(n.startswith("core_critic.") for n in names)
    assert not any(n.startswith("lstm_") for n in names)
    assert model.policy.lstm_actor is model.policy.core_actor  # what sb3-contrib calls
    path = tmp_path / "new.zip"
    model.save(path)
    old = tmp_path / "old.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "policy.pth":
                state = torch.load(path_in(tmp_path, data), weights_only=True)
                state = {k.replace("core_actor.", "lstm_actor.")
                          .replace("core_critic.", "lstm_critic."): v for k, v in state.items()}
                data = torch_bytes(state)
            dst.writestr(item, data)
    with zipfile.ZipFile(old) as z:
        assert b"lstm_actor." in z.read("policy.pth")
    loaded = load_model(old)
    for key, value in model.policy.state_dict().items():
        assert torch.equal(loaded.policy.state_dict()[key], value), key


def path_in(folder, data: bytes):
    path = folder / "state.pth"
    path.write_bytes(data)
    return path


def torch_bytes(state) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def test_config_loading_leaves_the_defaults_files_untouched():
    before = copy.deepcopy(read_yaml(config_dir() / "ppo.yaml"))
    learners.get("ppo").load_config(["env.id=rimrl/Pickup-v0", "core.hidden_size=96"])
    assert read_yaml(config_dir() / "ppo.yaml") == before


def test_evaluate_flags_come_from_the_learners_that_declare_them():
    """Each learner's evaluate options become flags labelled with the learners that read
    them; a learner that declares none (supervised) labels none."""
    from rimrl.learners.requests import option_fields

    evaluate = build_parser()._subparsers._group_actions[0].choices["evaluate"]
    helps = {a.dest: a.help for a in evaluate._actions}
    for learner in learners.all_learners():
        for name in option_fields(learner.eval_options):
            label = helps[name].split(" runs: ")[0].split(", ")
            assert learner.name in label, (name, label)
    assert helps["probe"].startswith("ppo runs: ")
    assert helps["episodes"].startswith("ppo, iqn runs: ")
    assert helps["gaps"].startswith("copy runs: ")
    assert not any("supervised" in (h or "") for h in helps.values())


def test_requests_check_themselves():
    from rimrl.learners.ppo import PPOEvalOptions
    from rimrl.learners.requests import PolicyEvalOptions, TrainRequest

    assert TrainRequest(resume=Path("r")).resume == Path("r")
    with pytest.raises(UserError, match="--config and --run-dir would be ignored"):
        TrainRequest(resume=Path("r"), config_file=Path("c.yaml"), run_dir=Path("d"))
    with pytest.raises(UserError, match="--episodes must be between 1 and 100,000 .* got 0"):
        PolicyEvalOptions(episodes=0)
    with pytest.raises(UserError, match="run it without --probe"):
        PPOEvalOptions(probe="memoryless", video=True)
    assert PPOEvalOptions(probe="memoryless").episodes == 10


def test_learners_never_see_argparse():
    """Learners receive typed requests (issue #26): nothing under rimrl/learners names
    argparse."""
    root = Path(learners.__file__).parent
    assert not [p.name for p in root.glob("*.py") if "argparse" in p.read_text()]
