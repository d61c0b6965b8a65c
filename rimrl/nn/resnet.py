"""Residual image encoders for Atari, with or without NFM (thesis section 10.4.5).

- ``resnet``: IMPALA-style stages (Espeholt et al., 2018): conv 3x3 -> max-pool 3/2 -> two
  residual blocks, channels (16, 32, 32), then a linear layer to ``features_dim``.
- ``resnet18``: ResNet-18's four stages of two basic blocks (64, 128, 256, 512), the
  architecture of the thesis' Table 3, with a stride-2 7x7 stem and no batch-norm (an RL
  encoder sees a moving data distribution and a target network).
- ``nfm-resnet`` / ``nfm-resnet18``: the same stages wrapped in :class:`rimrl.nn.nfm.NFMStack`:
  an NFM site after every stage, K = 2 passes, top-k 4, key 32, value 32, 4 heads
  (section 10.4.5).

All are SB3 ``BaseFeaturesExtractor``s taking channel-first images (SB3 scales uint8 to [0, 1]
before the encoder).
"""

from __future__ import annotations

from typing import Optional, Sequence

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from rimrl.config import default_of
from rimrl.nn.nfm import NFMStack


class _Residual(nn.Module):
    """``x + conv(relu(conv(relu(x))))`` (IMPALA's block), or with a strided projection when
    the shape changes (ResNet's basic block)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, 3, stride, 1), nn.ReLU(),
                                  nn.Conv2d(c_out, c_out, 3, 1, 1))
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out
                     else nn.Conv2d(c_in, c_out, 1, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


def impala_stages(in_channels: int, channels: Sequence[int]) -> list[nn.Module]:
    stages = []
    for c in channels:
        stages.append(nn.Sequential(nn.Conv2d(in_channels, c, 3, 1, 1),
                                    nn.MaxPool2d(3, 2, 1), _Residual(c, c), _Residual(c, c)))
        in_channels = c
    return stages


def resnet18_stages(in_channels: int, channels: Sequence[int]) -> list[nn.Module]:
    stem = nn.Conv2d(in_channels, channels[0], 7, 2, 3)
    stages, c_in = [], channels[0]
    for i, c in enumerate(channels):
        first = _Residual(c_in, c, stride=1 if i == 0 else 2)
        stage = nn.Sequential(first, _Residual(c, c))
        stages.append(nn.Sequential(stem, stage) if i == 0 else stage)
        c_in = c
    return stages


ARCHS = {"impala": (impala_stages, (16, 32, 32)), "resnet18": (resnet18_stages,
                                                                (64, 128, 256, 512))}


class ResNetEncoder(BaseFeaturesExtractor):
    """Residual stages, optionally with NFM, then ``ReLU -> Linear -> ReLU``.

    Args:
        observation_space: channel-first image Box.
        features_dim: output size.
        arch: ``impala`` or ``resnet18`` (stage layout).
        channels: output channels per stage (default: the arch's).
        nfm: wrap the stages in an :class:`~rimrl.nn.nfm.NFMStack`.
        passes, top_k, key_size, value_size, heads, batch_norm: NFM settings (section 10.4.5);
            the defaults are NFMStack's.
        sites: stages followed by an NFM site (default: all); ``[1, 2]`` skips the finest
            IMPALA stage, the most expensive site (see :class:`~rimrl.nn.nfm.NFMStack`).
    """

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 512,
                 arch: str = "impala", channels: Optional[Sequence[int]] = None,
                 nfm: bool = False, passes: int = default_of(NFMStack, "passes"),
                 top_k: int = default_of(NFMStack, "top_k"),
                 key_size: int = default_of(NFMStack, "key_size"),
                 value_size: int = default_of(NFMStack, "value_size"),
                 heads: int = default_of(NFMStack, "heads"),
                 batch_norm: bool = default_of(NFMStack, "batch_norm"),
                 sites: Optional[Sequence[int]] = None):
        super().__init__(observation_space, features_dim)
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHS)}")
        build, default_channels = ARCHS[arch]
        channels = list(channels or default_channels)
        stages = build(observation_space.shape[0], channels)
        self.body = (NFMStack(stages, channels, passes, key_size, value_size, heads, top_k,
                              batch_norm, sites) if nfm else nn.Sequential(*stages))
        with torch.no_grad():
            n_flat = self.body(torch.zeros(1, *observation_space.shape)).numel()
        self.head = nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Linear(n_flat, features_dim),
                                  nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(observations.float()))


class NFMResNetEncoder(ResNetEncoder):
    """``nfm-resnet``: :class:`ResNetEncoder` with NFM on (IMPALA stages by default)."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 512, **kwargs):
        kwargs.setdefault("nfm", True)
        super().__init__(observation_space, features_dim, **kwargs)


class ResNet18Encoder(ResNetEncoder):
    """``resnet18``: :class:`ResNetEncoder` with ResNet-18 stages."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 512, **kwargs):
        kwargs.setdefault("arch", "resnet18")
        super().__init__(observation_space, features_dim, **kwargs)


class NFMResNet18Encoder(ResNetEncoder):
    """``nfm-resnet18``: ResNet-18 stages with NFM at all four stages (Table 3's setting)."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 512, **kwargs):
        kwargs.setdefault("arch", "resnet18")
        kwargs.setdefault("nfm", True)
        super().__init__(observation_space, features_dim, **kwargs)
