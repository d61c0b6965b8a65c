"""Observation encoders by name, as SB3 ``BaseFeaturesExtractor`` classes. The one place an
encoder is chosen: algorithms receive the class through ``policy_kwargs`` and never branch on
the name.

- ``nature``: the Nature-DQN CNN (Mnih et al., 2015), the encoder of the RIMs paper's PPO.
- ``mlp``: a two-layer MLP for vector observations.
- ``flatten``: observations flattened as they are.
- ``combined``: SB3's extractor for dict observations (CNN for images, flatten for the rest).
- ``grid``, ``grid-set``: MiniGrid/BabyAI encoders (:mod:`rimrl.nn.grid_encoders`); ``grid-set``
  gives the core a set of elements (``num_elements``) to compete over.
- ``resnet``, ``nfm-resnet``, ``resnet18``, ``nfm-resnet18``: residual Atari encoders, with NFM
  sites after each stage in the ``nfm-`` variants (:mod:`rimrl.nn.resnet`, thesis ch. 10).

An encoder with a ``num_elements`` attribute produces ``num_elements`` equal-sized elements,
flattened; policies pass that number to the core.
"""

from __future__ import annotations

from typing import Callable

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import (BaseFeaturesExtractor, CombinedExtractor,
                                                   FlattenExtractor, NatureCNN)
from torch import nn

from rimrl.errors import UserError, unknown_name
from rimrl.nn.grid_encoders import GridEncoder, GridSetEncoder
from rimrl.nn.resnet import NFMResNet18Encoder, NFMResNetEncoder, ResNet18Encoder, ResNetEncoder


class MlpEncoder(BaseFeaturesExtractor):
    """Flatten, then ``Linear -> ReLU -> Linear -> ReLU``.

    Args:
        observation_space: a Box space.
        features_dim: output size (and hidden size).
    """

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 128):
        super().__init__(observation_space, features_dim)
        n_in = int(torch.tensor(observation_space.shape).prod())
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n_in, features_dim), nn.ReLU(),
                                 nn.Linear(features_dim, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(observations.float())


class NatureEncoder(NatureCNN):
    """SB3's ``NatureCNN`` (same layers, names and initialisation) computed in channels_last
    memory format: the input is converted once per batch. On this CPU the convolutions'
    forward and backward at training batch size (256) take 0.77x the time [0.68-0.85]; at
    rollout batch size (8) it is even (``benchmarks/encoder_speed.py``)."""

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        # the weights are converted at the first call, not at construction: SB3's orthogonal
        # initialisation, which runs after it, needs them in the default layout
        first = self.cnn[0].weight
        if not first.is_contiguous(memory_format=torch.channels_last):
            self.cnn.to(memory_format=torch.channels_last)
        x = observations.contiguous(memory_format=torch.channels_last)
        return self.linear(self.cnn(x))


ENCODERS: dict[str, Callable[..., BaseFeaturesExtractor]] = {
    "nature": NatureEncoder,
    "mlp": MlpEncoder,
    "flatten": FlattenExtractor,
    "combined": CombinedExtractor,
    "grid": GridEncoder,
    "grid-set": GridSetEncoder,
    "resnet": ResNetEncoder,
    "nfm-resnet": NFMResNetEncoder,
    "resnet18": ResNet18Encoder,
    "nfm-resnet18": NFMResNet18Encoder,
}


def encoder_class(name: str) -> type[BaseFeaturesExtractor]:
    """The features-extractor class registered as ``name``."""
    if name not in ENCODERS:
        raise UserError(unknown_name("encoder", name, ENCODERS))
    return ENCODERS[name]


def check_encoder_kwargs(cls: type, kwargs: dict, key: str) -> None:
    """A one-line error when ``kwargs`` names an argument ``cls`` does not take."""
    import inspect

    accepted: set[str] = set()
    for klass in cls.__mro__:
        params = inspect.signature(klass.__init__).parameters
        accepted |= {n for n, p in params.items() if p.kind is not p.VAR_KEYWORD}
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    accepted -= {"self", "observation_space", "args"}
    for name in kwargs:
        if name not in accepted:
            raise UserError(f"{key}: '{cls.__name__}' takes no argument '{name}'; it takes: "
                            f"{', '.join(sorted(accepted))}")


def encoder_arguments(cls: type, kwargs: dict, features_dim: int) -> dict:
    """``kwargs`` plus ``features_dim`` where ``cls`` takes one (``flatten`` does not)."""
    import inspect

    takes = "features_dim" in inspect.signature(cls.__init__).parameters
    return dict(kwargs, features_dim=features_dim) if takes else dict(kwargs)


def encoder_for_space(space: gym.spaces.Space) -> type[BaseFeaturesExtractor]:
    """The ``auto`` choice: Nature CNN for images; ``grid`` for MiniGrid dicts, for every core;
    combined for other dicts; MLP otherwise.

    RIMs get the vector path (``grid``) on MiniGrid too, not the set path (``grid-set``,
    their spatial mode), because the set path does not learn reliably yet
    (benchmarks/RESULTS.md, "grid-set-path"). ``--encoder grid-set`` still chooses it."""
    from stable_baselines3.common.preprocessing import is_image_space

    if isinstance(space, gym.spaces.Dict):
        if {"image", "direction", "mission"} <= set(space.spaces):
            return GridEncoder
        return CombinedExtractor
    if is_image_space(space, check_channels=False):
        return NatureEncoder
    return MlpEncoder
