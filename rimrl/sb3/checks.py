"""Checks that ``rimrl train ppo|iqn`` (and ``rimrl sweep`` for each trial) make before
anything is created: the device, the env (and its distractor split), whether the encoder can
read the env's observations, and whether the run fits in this machine's memory. Each failure
is a one-line :class:`~rimrl.errors.UserError`."""

from __future__ import annotations

import os
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.vec_env import VecTransposeImage

from rimrl.errors import UserError, unknown_name
from rimrl.nn.encoders import ENCODERS, encoder_arguments, encoder_for_space
from rimrl.sb3.environments import distractor_splits, env_family, make_env
from rimrl.sb3.periodic_evaluation import evaluation_rows
from rimrl.tracking import check_tracking

# memory one environment copy holds besides its rollout storage (an ALE emulator with its
# wrappers is the largest seen: a few MB); a generous bound
ENV_BYTES = 32 * 2**20


def check_run(cfg, encoder_of: Callable, stored_bytes: Callable, core_hidden: int = 0,
              actions: tuple[str, ...] = ("Discrete", "Box", "MultiDiscrete", "MultiBinary"),
              observations: tuple[str, ...] = ("Box", "Dict", "Discrete", "MultiDiscrete",
                                               "MultiBinary"),
              learner: str = "this learner") -> None:
    """Every check below, for a PPO or IQN run config.

    Args:
        cfg: the run config (``env``, ``policy``, ``device``).
        encoder_of: ``(cfg, observation_space) -> encoder class`` of the learner.
        stored_bytes: ``observation_space -> bytes`` the learner stores per env (PPO's
            rollout, IQN's share of the replay memory).
        core_hidden: the recurrent core's total hidden size (0 for none).
        actions: the names of the action-space classes the learner can act in.
        observations: the names of the observation-space classes it can read.
        learner: its name, for the message.
    """
    check_device(cfg.device)
    check_backend(cfg.env)
    if cfg.train.track:
        check_tracking(cfg.train.wandb_project)
    space = observation_space(cfg)
    if cfg.eval.every or cfg.eval.distractors:  # a bad split is refused even when unused
        evaluation_rows(cfg)  # an eval split the env does not have fails here
    if type(space).__name__ not in observations:
        raise UserError(f"{learner} cannot read {cfg.env.id}'s observations ({space}); it "
                        f"reads {' or '.join(observations)} spaces")
    check_action_space(cfg, actions, learner)
    check_encoder(cfg, space, encoder_of)
    check_memory(cfg, stored_bytes(space), core_hidden)


def check_device(name: str) -> None:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}'; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}': torch sees no CUDA GPU on this machine; "
                        "use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"device '{name}' is not supported; use cpu, cuda or cuda:N")


def check_action_space(cfg, actions: tuple[str, ...], learner: str) -> None:
    """A one-line error when the env's actions are of a kind the learner cannot take (IQN:
    discrete only), before anything is built."""
    env = make_env(cfg, n_envs=1)
    try:
        space = env.action_space
    finally:
        env.close()
    if type(space).__name__ not in actions:
        raise UserError(f"{learner} cannot act in {cfg.env.id}: its actions are {space}, and "
                        f"{learner} takes {' or '.join(actions)} action spaces"
                        + ("; try rimrl train ppo" if "Box" not in actions else ""))


def observation_space(cfg):
    """The observation space of the run's env (one copy built and closed again; an unknown
    env or distractor split fails here)."""
    fixed = sorted(set(cfg.env.kwargs or {}) & set(_SET_BY_ID))
    if fixed and distractor_splits(cfg.env.id):
        raise UserError(f"env.kwargs.{fixed[0]} is set by the env id: {_SET_BY_ID[fixed[0]]}")
    try:
        env = make_env(cfg, n_envs=1)
    except (TypeError, ValueError, AssertionError) as exc:
        # the env's own check of a keyword or value of env.kwargs, as one line
        if not cfg.env.kwargs:
            raise
        raise UserError(f"{cfg.env.id} refuses env.kwargs {cfg.env.kwargs}: "
                        f"{' '.join(str(exc).split())[:160]}") from None
    try:
        return as_sb3_sees_it(env.observation_space)
    finally:
        env.close()


#: env constructor keywords of the distractor suites that the env id and config already set
_SET_BY_ID = {
    "split": "a run trains on env.distractors (default: the id's split) and evaluates other "
             "splits with --distractors or eval.distractors; remove env.kwargs.split",
    "version": "choose rimrl/Pickup-v0 or rimrl/Pickup-v1 with --env; remove "
               "env.kwargs.version",
}


def as_sb3_sees_it(space):
    """The space the model is built on: SB3 wraps envs whose images are channel-last in
    ``VecTransposeImage`` (channel-first), image by image for dict spaces."""
    if isinstance(space, gym.spaces.Dict):
        return gym.spaces.Dict({k: as_sb3_sees_it(v) for k, v in space.spaces.items()})
    if is_image_space(space) and not is_image_space_channels_first(space):
        return VecTransposeImage.transpose_space(space)
    return space


def check_encoder(cfg, space, encoder_of: Callable) -> None:
    """Build the encoder on the env's observation space, as training will."""
    cls = encoder_of(cfg, space)
    kwargs = encoder_arguments(cls, cfg.policy.encoder_kwargs, cfg.policy.features_dim)
    try:
        cls(space, **kwargs)
    except UserError:
        raise
    except Exception as exc:  # SB3 asserts, shape errors: any means "cannot read this"
        reason = " ".join(str(exc).split()).split(". ")[0][:160] or type(exc).__name__
        given = cfg.policy.encoder_kwargs
        if given:  # the user's arguments are the likelier cause
            raise UserError(f"encoder '{cfg.policy.encoder}' ({cls.__name__}) could not be "
                            f"built with policy.encoder_kwargs {given} for {cfg.env.id}: "
                            f"{reason}; change policy.encoder_kwargs") from None
        raise UserError(f"encoder '{cfg.policy.encoder}' ({cls.__name__}) cannot read "
                        f"{cfg.env.id}'s observations ({describe(space)}): {reason}; "
                        f"choose another --encoder{encoder_hint(space)}") from None


def encoder_hint(space) -> str:
    """`` (e.g. NAME)`` with the registered encoder the ``auto`` choice gives ``space``."""
    auto = encoder_for_space(space)
    fits = [name for name, cls in ENCODERS.items() if cls is auto]
    return f" (e.g. {fits[0]})" if fits else ""


def describe(space) -> str:
    if isinstance(space, gym.spaces.Dict):
        return "a dict of " + ", ".join(space.spaces)
    return f"{type(space).__name__} of shape {tuple(space.shape)}"


def machine_memory() -> int:
    """Physical memory of this machine in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def observation_bytes(space, itemsize: int | None = None) -> int:
    """Bytes of one observation (``itemsize``: as stored, e.g. 4 for float32 copies)."""
    return sum(int(np.prod(s.shape)) * (itemsize or np.dtype(s.dtype).itemsize)
               for s in _leaves(space))


def check_memory(cfg, stored_per_env: int, core_hidden: int) -> None:
    """Refuse settings whose envs and stored observations, or whose core's parameters with
    their gradients and Adam moments, could not fit in this machine's memory."""
    ram = machine_memory()
    gib = 2**30
    envs = cfg.env.n_envs * (ENV_BYTES + stored_per_env)
    if envs > ram:
        raise UserError(f"env.n_envs {cfg.env.n_envs} needs ~{envs / gib:.0f} GiB for the envs "
                        f"and their stored observations; this machine has {ram / gib:.0f} GiB: "
                        "use fewer envs")
    # gate-based cores: about 4 H (F + H) weights; x4 for gradients and Adam's two moments
    core = 4 * core_hidden * (cfg.policy.features_dim + core_hidden) * 4 * 4
    if core > ram:
        raise UserError(f"core.hidden_size {core_hidden} needs ~{core / gib:.0f} GiB for the "
                        f"core's weights, gradients and optimizer state; this machine has "
                        f"{ram / gib:.0f} GiB: use a smaller core")


def _leaves(space):
    if isinstance(space, gym.spaces.Dict):
        return [leaf for sub in space.spaces.values() for leaf in _leaves(sub)]
    return [space]


#: ``env.backend`` values: who builds Atari training envs
BACKENDS = ("sb3", "ale-vector")


def check_backend(env_cfg) -> None:
    """``env.backend`` names a backend, and ``ale-vector`` is asked of an Atari game trained
    without distractor overlays (they draw on Python frames the C++ env never shows)."""
    if env_cfg.backend not in BACKENDS:
        raise UserError("env." + unknown_name("backend", env_cfg.backend, BACKENDS))
    if env_cfg.backend == "ale-vector":
        if env_family(env_cfg.id) != "atari":
            raise UserError(f"env.backend ale-vector runs Atari games; {env_cfg.id} is not "
                            "one (use env.backend=sb3)")
        if env_cfg.distractors:
            raise UserError("env.backend ale-vector cannot draw distractor overlays in "
                            "training; use env.backend=sb3 with env.distractors")
