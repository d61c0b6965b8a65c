"""Typed configs: dataclasses filled from YAML files in ``configs/`` and command-line overrides.

A config is a (nested) dataclass. :func:`load_config` reads a YAML file, applies
``key.sub=value`` overrides (values parsed with ``yaml.safe_load``, never ``eval``), checks
every key and type, and returns the dataclass. An unknown key is an error that names the
nearest valid key.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import os
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar, Union

import yaml

from rimrl.errors import UserError, closest
from rimrl.runs import atomic_write

T = TypeVar("T")
_SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


class ConfigError(UserError):
    """A config file or override that does not fit the config's schema."""


#: the largest seed numpy's and gymnasium's generators take
MAX_SEED = 2**32 - 1
#: more CPU threads than any machine has is a typo, not a setting
MAX_THREADS = 4096
#: the most episodes one evaluation plays (per split): beyond it an evaluation runs for hours
#: on one core, far past what a 95% interval needs (at 100,000 episodes a success rate's
#: Wilson interval is +-0.003)
MAX_EPISODES = 100_000
#: the most parallel envs a run builds: each is a Python object with its own buffers, and
#: far fewer fill every core of a large machine
MAX_ENVS = 4096
#: a config file larger than this is not a config (a log, a data file, a YAML bomb)
MAX_CONFIG_BYTES = 1 << 20
#: YAML aliases allowed in one config file (each can multiply what the file expands to)
MAX_ALIASES = 100


@dataclasses.dataclass
class RunSettings:
    """What every run config has, written once: ``seed`` (CPU runs repeat with it),
    ``device`` (torch device), ``runs_dir`` (where new run directories go) and ``threads``
    (torch's CPU threads for the run; 0 keeps torch's default, one per core).

    ``threads=1`` holds up best when other work shares the cores: small recurrent ops split
    over two busy threads wait on each other (docs/ppo.md, "Threads").
    """

    seed: int = 0
    device: str = "cpu"
    runs_dir: str = "runs"
    threads: int = 0

    def __post_init__(self):
        if not 0 <= self.threads <= MAX_THREADS:
            raise UserError(f"threads must be 0 (torch's default) or a count up to "
                            f"{MAX_THREADS}, got {self.threads}")
        require_seed("seed", self.seed)


def default_of(function: Callable, name: str) -> Any:
    """The default of ``function``'s parameter ``name``. Config classes read the defaults of
    the library classes they configure from those classes' signatures, so each value is
    written once, next to the code it sets (``rimrl train ... --print-config`` shows them)."""
    return inspect.signature(function).parameters[name].default


def config_dir() -> Path:
    """The folder of YAML defaults: ``$RIMRL_CONFIGS``, else the installed ``rimrl.configs``
    package (the repository's ``configs/`` folder, shipped as package data)."""
    env = os.environ.get("RIMRL_CONFIGS")
    if env:
        path = Path(env)
    else:
        import rimrl.configs
        path = Path(rimrl.configs.__file__).resolve().parent
    if not path.is_dir():
        raise ConfigError(
            f"config folder {path} not found; reinstall rimrl ('pip install .') or point "
            "RIMRL_CONFIGS at a copy of its configs/ folder"
        )
    return path


def read_yaml(path: Union[str, Path]) -> dict:
    """A YAML mapping from ``path``; a clear error when it is missing or not a mapping."""
    path = Path(path)
    if path.exists() and not path.is_dir() and not path.is_file():
        raise ConfigError(f"{path} is not a regular file (a FIFO, device or socket); give a "
                          "YAML file")
    if path.is_file() and path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is {path.stat().st_size:,} bytes, more than a config "
                          f"holds (at most {MAX_CONFIG_BYTES:,}); give a YAML config file")
    try:
        text = path.read_text()
        if text.count("*") and _aliases(text) > MAX_ALIASES:
            raise ConfigError(f"config file {path} uses more than {MAX_ALIASES} YAML aliases "
                              "(*name); write the values out")
        data = yaml.safe_load(text)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text file; give a YAML file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {_first_line(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def _aliases(text: str) -> int:
    """How many YAML aliases (``*name``) ``text`` uses (0 when it does not scan as YAML:
    the parser then says what is wrong)."""
    try:
        return sum(isinstance(t, yaml.AliasToken) for t in yaml.scan(text))
    except yaml.YAMLError:
        return 0


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def override_text(key: str, value: Any) -> str:
    """``key=value`` with the value written as YAML, so that :func:`parse_override` reads it
    back exactly (non-finite floats included: they are then refused like any other)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31).strip()
    if text.endswith("\n..."):  # the end marker YAML adds after a plain scalar
        text = text[:-4].rstrip()
    return f"{key}={text}"


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` -> (["a", "b"], 3). Values are YAML scalars or lists."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. seed=1")
    key, raw = text.split("=", 1)
    key = key.strip().replace("-", "_")
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and _SCIENTIFIC.match(value.strip()):
        value = float(value)  # YAML 1.1 reads "1e-3" as a string; users mean a number
    return key.split("."), value


def merge_override(data: dict, path: list[str], value: Any) -> None:
    """Set ``data[path[0]][path[1]]... = value``, creating nested mappings as needed."""
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def from_dict(cls: type[T], data: dict, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, checking keys and types recursively."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in _with_new_names(cls, data, prefix).items():
        name = str(key).replace("-", "_")
        if name not in fields:
            raise ConfigError(_unknown_key(prefix + str(key), [prefix + f for f in fields]))
        kwargs[name] = _coerce(hints[name], value, prefix + name)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(_first_line(exc)) from None


_NOTED_RENAMES: set[str] = set()


def _with_new_names(cls: type, data: dict, prefix: str) -> dict:
    """``data`` with the keys a config class renamed (its ``RENAMED``, old -> new) under
    their new names: old run directories and habits keep working, and a note on stderr
    (once per key and process) gives the new name. An old key wins over the new one: only a
    user or an old file writes it."""
    renamed = getattr(cls, "RENAMED", {})
    if not any(old in data for old in renamed):
        return data
    data = dict(data)
    for old, new in renamed.items():
        if old in data:
            data[new] = data.pop(old)
            if prefix + old not in _NOTED_RENAMES:
                _NOTED_RENAMES.add(prefix + old)
                print(f"rimrl: note: config key '{prefix + old}' is now '{prefix + new}'; "
                      "the old name still works", file=sys.stderr)
    return data


def _unknown_key(key: str, valid: list[str]) -> str:
    near = closest(key, valid)
    hint = f"; did you mean '{near[0]}'?" if near else f"; valid keys: {', '.join(valid)}"
    return f"unknown config key '{key}'{hint}"


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value if value is not None else {}, key + ".")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if origin in (list, tuple):
        (item,) = typing.get_args(tp)[:1] or (Any,)
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [_coerce(item, v, key) for v in value]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # YAML reads .inf and .nan as floats
                raise ConfigError(f"config key '{key}' must be a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
    return value


def to_dict(config: Any) -> dict:
    """A plain mapping of a config dataclass, ready for YAML."""
    return dataclasses.asdict(config)


def load_config(
    cls: type[T],
    files: list[Union[str, Path, dict]] = (),
    overrides: list[str] = (),
    section: Union[None, str, Callable[[dict], Optional[str]]] = None,
    presets: Optional[Callable[[dict, dict], None]] = None,
) -> T:
    """Read YAML ``files`` in order (later ones win), then ``overrides``, into ``cls``.

    Args:
        cls: the config dataclass: the one home of the defaults; the files and overrides
            change some of them.
        files: YAML files (or mappings already read from one); a file with a ``default`` mapping (the learners' defaults files
            keep it empty) holds family sections beside it (``atari:``, ``grid:``, ...),
            merged over ``default``.
        overrides: ``key.sub=value`` strings.
        section: the family section to merge over each file's ``default``: a name, or a
            function of the requested values (every file's ``default`` with the overrides
            applied) that returns the name, so a ``--set env.id=...`` picks its family.
        presets: ``presets(data, explicit)`` may change ``data`` (the values of the class
            and the first file, the learner's defaults) before the user's own values
            (``explicit``: the later files and the overrides, as one mapping) are applied:
            a named preset (e.g. ``core.variant``) then sits between the two.
    """
    raws = [copy.deepcopy(f) if isinstance(f, dict) else read_yaml(f) for f in files]
    defaults = to_dict(cls())  # the one home of every default; nested factories included
    if callable(section):
        requested = copy.deepcopy(defaults)
        for raw in copy.deepcopy(raws):  # the merges below must not see these updates
            _deep_update(requested, raw["default"] if isinstance(raw.get("default"), dict)
                         else raw)
        _apply_overrides(requested, overrides)
        section = section(requested)
    layers = [_with_section(raw, section) for raw in raws]
    data = defaults
    for index, raw in enumerate(layers):
        if index == 1 and presets is not None:
            _apply_presets(presets, data, layers[1:], overrides)
        _deep_update(data, raw)
    if len(layers) < 2 and presets is not None:
        _apply_presets(presets, data, [], overrides)
    _apply_overrides(data, overrides)
    return from_dict(cls, data)


def _with_section(raw: dict, section: Optional[str]) -> dict:
    """A file's values: its ``default`` mapping with the family ``section`` over it, or the
    whole file when it has no ``default``."""
    if not isinstance(raw.get("default"), dict):
        return raw
    merged: dict = {}
    _deep_update(merged, raw["default"])
    if section is not None and isinstance(raw.get(section), dict):
        _deep_update(merged, raw[section])
    return merged


def _apply_presets(presets: Callable[[dict, dict], None], data: dict, user_files: list[dict],
                   overrides: list[str]) -> None:
    explicit: dict = {}
    for raw in copy.deepcopy(user_files):
        _deep_update(explicit, raw)
    _apply_overrides(explicit, overrides)
    presets(data, explicit)


def _apply_overrides(data: dict, overrides: list[str]) -> None:
    for text in overrides:
        path, value = parse_override(text)
        merge_override(data, path, value)


def _deep_update(target: dict, source: dict) -> None:
    for key, value in source.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def config_text(config: Any) -> str:
    """The resolved config as YAML, as a run directory's ``config.yaml`` holds it."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def save_config(config: Any, path: Union[str, Path]) -> None:
    """Write the resolved config as YAML (atomically: a kill leaves the old file or the new)."""
    text = config_text(config)

    def write(tmp: str) -> None:
        Path(tmp).write_text(text)

    atomic_write(path, write)


def require_between(name: str, value: Any, low: Any, high: Any, why: str) -> None:
    """A one-line :class:`UserError` unless ``low <= value <= high``; ``why`` says what the
    bounds protect."""
    if not low <= value <= high:
        raise UserError(f"{name} must be between {low:,} and {high:,} ({why}), got {value}")


def require_seed(name: str, value: int) -> None:
    """A seed numpy's and gymnasium's generators take."""
    require_between(name, value, 0, MAX_SEED, "numpy's and gymnasium's range")


def require_episodes(name: str, value: int) -> None:
    """An episode count an evaluation plays in reasonable time (:data:`MAX_EPISODES`)."""
    require_between(name, value, 1, MAX_EPISODES,
                    "more runs for hours for an interval no one needs")


def require_positive(values: dict[str, Any]) -> None:
    """Raise a one-line :class:`ConfigError` for the first entry that is not > 0.

    ``values`` maps a config key (as the user writes it) to its value.
    """
    for key, value in values.items():
        if value is None or not value > 0:
            kind = "a positive integer" if isinstance(value, int) else "positive"
            raise ConfigError(f"{key} must be {kind}, got {value}")
