"""Encoders for MiniGrid/BabyAI observations ``{image (7,7,3) indices, direction, mission ids}``.

- ``grid-set`` (:class:`GridSetEncoder`): a *set* of elements, one per visible cell plus one
  for the mission (and direction), so RIMs can compete over positions with the spatial input
  mode of the core (thesis section 8.2.2). The flat output is ``num_elements x element_dim``;
  policies hand ``num_elements`` to the core, which reads it as (N, element_dim).
- ``grid`` (:class:`GridEncoder`): a CNN over the cell embeddings whose feature maps the
  mission modulates (FiLM), then the mission embedding concatenated, one vector: the
  encoder of every core on MiniGrid by default.

Cells are embedded as the sum of object, colour and state embeddings; the mission as the mean
of its word embeddings (a bag of words over the fixed vocabulary of ``rimrl.envs.minigrid_obs``).
"""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

CELL_VALUES = 32  # object, colour and state indices are all < 32 in MiniGrid


class _Parts(nn.Module):
    """Embeddings shared by both grid encoders."""

    def __init__(self, space: gym.spaces.Dict, dim: int):
        super().__init__()
        image = space["image"]
        self.view = image.shape[:2]
        self.cell = nn.Embedding(3 * CELL_VALUES, dim)
        self.word = nn.Embedding(int(space["mission"].high.max()) + 1, dim, padding_idx=0)
        self.direction = nn.Linear(4, dim)

    def cells(self, image: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) indices -> (B, H, W, dim): object + colour + state embeddings."""
        idx = image.long().clamp(0, CELL_VALUES - 1)
        offsets = torch.arange(3, device=idx.device) * CELL_VALUES
        return self.cell(idx + offsets).sum(-2)

    def mission(self, tokens: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        """Bag-of-words mission embedding plus the direction: (B, dim)."""
        ids = tokens.long()
        emb = self.word(ids)
        count = (ids > 0).sum(1, keepdim=True).clamp(min=1)
        # one-hot direction arrives as (B, 4) from rollouts and (B, 1, 4) from buffers
        return emb.sum(1) / count + self.direction(direction.float().reshape(len(ids), -1))


class GridSetEncoder(BaseFeaturesExtractor):
    """One element per visible cell (with a learned position embedding) plus the mission.

    Args:
        observation_space: Dict with ``image``, ``direction`` (one-hot after SB3's
            preprocessing) and ``mission``.
        element_dim: size of each element.
        features_dim: ignored (the output is ``num_elements * element_dim``); accepted so the
            encoder plugs into configs written for other encoders.
    """

    def __init__(self, observation_space: gym.spaces.Dict, element_dim: int = 32,
                 features_dim: int | None = None):
        h, w = observation_space["image"].shape[:2]
        self.num_elements = h * w + 1
        super().__init__(observation_space, self.num_elements * element_dim)
        self.element_dim = element_dim
        self.parts = _Parts(observation_space, element_dim)
        self.position = nn.Parameter(torch.zeros(h * w, element_dim))
        nn.init.normal_(self.position, std=0.1)
        self.norm = nn.LayerNorm(element_dim)

    def forward(self, obs: dict) -> torch.Tensor:
        cells = self.parts.cells(obs["image"]).flatten(1, 2) + self.position
        mission = self.parts.mission(obs["mission"], obs["direction"]).unsqueeze(1)
        elements = self.norm(torch.cat([cells, mission], dim=1))
        return elements.flatten(1)


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al., 2018): ``x * (1 + gamma(m)) + beta(m)``
    per channel, with gamma and beta computed from the mission embedding ``m``.

    Built as the identity (zero weights; a policy's orthogonal initialisation may replace
    them), so a model saved before FiLM existed loads with zeros here and computes exactly
    what it did.
    """

    def __init__(self, condition_dim: int, channels: int):
        super().__init__()
        self.affine = nn.Linear(condition_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(condition)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + gamma) + beta


class GridEncoder(BaseFeaturesExtractor):
    """Cell embeddings -> two 2x2 convolutions, each modulated by the mission (FiLM) ->
    concat mission embedding -> linear.

    Concatenation alone puts the mission (``embed_dim`` numbers) beside 1,600 convolution
    features; FiLM lets the mission select what the convolutions look for, the conditioning
    BabyAI's baselines use (Chevalier-Boisvert et al., 2019). On the pickup task it is what
    makes the LSTM read the mission (benchmarks/RESULTS.md, "pickup-film").
    ``film=False`` (``--set policy.encoder_kwargs.film=false``) is the plain CNN.

    Args:
        observation_space: Dict with ``image``, ``direction`` and ``mission``.
        features_dim: output size.
        embed_dim: size of the cell and word embeddings.
        film: modulate the convolutions by the mission (``False``: the plain CNN + concat).
    """

    def __init__(self, observation_space: gym.spaces.Dict, features_dim: int = 128,
                 embed_dim: int = 16, film: bool = True):
        super().__init__(observation_space, features_dim)
        self.parts = _Parts(observation_space, embed_dim)
        h, w = observation_space["image"].shape[:2]
        self.conv1, self.conv2 = nn.Conv2d(embed_dim, 32, 2), nn.Conv2d(32, 64, 2)
        self.film = nn.ModuleList([FiLM(embed_dim, 32), FiLM(embed_dim, 64)]) if film else None
        conv_out = 64 * (h - 2) * (w - 2)
        self.head = nn.Sequential(nn.Linear(conv_out + embed_dim, features_dim), nn.ReLU())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # models saved before FiLM: conv.0 / conv.2 were the two convolutions, and identity
        # FiLM layers (zeros) reproduce them exactly
        for old, new in (("conv.0.", "conv1."), ("conv.2.", "conv2.")):
            for name in ("weight", "bias"):
                if prefix + old + name in state_dict:
                    state_dict[prefix + new + name] = state_dict.pop(prefix + old + name)
        if self.film is not None and prefix + "film.0.affine.weight" not in state_dict:
            for key, value in self.film.state_dict().items():
                state_dict[prefix + "film." + key] = torch.zeros_like(value)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, obs: dict) -> torch.Tensor:
        cells = self.parts.cells(obs["image"]).permute(0, 3, 1, 2)
        mission = self.parts.mission(obs["mission"], obs["direction"])
        x = self.conv1(cells)
        if self.film is not None:
            x = self.film[0](x, mission)
        x = self.conv2(torch.relu(x))
        if self.film is not None:
            x = self.film[1](x, mission)
        return self.head(torch.cat([torch.relu(x).flatten(1), mission], dim=1))
