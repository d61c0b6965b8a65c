"""IQN networks (Dabney et al., 2018) with Rainbow's dueling and noisy heads (Hessel et al.,
2018), as an SB3 policy: the encoder is any ``BaseFeaturesExtractor`` (``policy_kwargs``), so
the learner never knows whether it runs the Nature CNN, a ResNet or an NFM-ResNet.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from torch import nn
from torch.nn import functional as F


class NoisyLinear(nn.Module):
    """Linear layer with factorised Gaussian parameter noise (Fortunato et al., 2018).

    ``w = mu_w + sigma_w * (f(eps_out) f(eps_in)^T)`` with ``f(x) = sign(x) sqrt(|x|)``; the
    noise is redrawn by :meth:`reset_noise` and left out while ``use_noise`` is False
    (greedy evaluation).

    Args:
        in_features, out_features: sizes.
        std_init: sigma_0; sigmas start at ``std_init / sqrt(in_features)`` (Rainbow: 0.1 in
            Kaixhin's implementation, 0.5 in the paper).
    """

    def __init__(self, in_features: int, out_features: int, std_init: float = 0.1):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features)
        weight = torch.empty(out_features, in_features).uniform_(-bound, bound)
        self.weight_mu = nn.Parameter(weight)
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), std_init * bound))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), std_init * bound))
        self.register_buffer("eps_in", torch.zeros(in_features))
        self.register_buffer("eps_out", torch.zeros(out_features))
        self.use_noise = True
        self.reset_noise()

    @staticmethod
    def _scaled(n: int, device) -> torch.Tensor:
        x = torch.randn(n, device=device)
        return x.sign() * x.abs().sqrt()

    def reset_noise(self) -> None:
        self.eps_in.copy_(self._scaled(self.in_features, self.eps_in.device))
        self.eps_out.copy_(self._scaled(self.out_features, self.eps_out.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.use_noise:
            return F.linear(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        return F.linear(x, weight, self.bias_mu + self.bias_sigma * self.eps_out)


def cosine_embedding(taus: torch.Tensor, dim: int) -> torch.Tensor:
    """``cos(pi * i * tau)`` for ``i = 1..dim`` (Dopamine's IQN): (B, N) -> (B, N, dim)."""
    i = torch.arange(1, dim + 1, device=taus.device, dtype=taus.dtype)
    return torch.cos(math.pi * i * taus.unsqueeze(-1))


class IQNNetwork(nn.Module):
    """State features ``psi(s)`` times the tau embedding ``phi(tau)`` (Hadamard product), then
    a head to one quantile value per action.

    Args:
        features_extractor: the encoder; its ``features_dim`` sizes the embedding.
        n_actions: discrete actions.
        embedding_dim: cosines in the tau embedding (IQN: 64).
        hidden_size: hidden units of the head (IQN: 512).
        dueling: separate value and advantage streams, ``Q = V + A - mean(A)``
            (Wang et al., 2016).
        noisy: noisy linear layers in the head (Fortunato et al., 2018).
        noisy_std: sigma_0 of the noisy layers.
    """

    def __init__(self, features_extractor: BaseFeaturesExtractor, n_actions: int,
                 embedding_dim: int = 64, hidden_size: int = 512, dueling: bool = False,
                 noisy: bool = False, noisy_std: float = 0.1):
        super().__init__()
        self.features_extractor = features_extractor
        dim = features_extractor.features_dim
        self.embedding_dim = embedding_dim
        self.tau_embedding = nn.Sequential(nn.Linear(embedding_dim, dim), nn.ReLU())

        def linear(n_in: int, n_out: int) -> nn.Module:
            return NoisyLinear(n_in, n_out, noisy_std) if noisy else nn.Linear(n_in, n_out)

        self.advantage = nn.Sequential(linear(dim, hidden_size), nn.ReLU(),
                                       linear(hidden_size, n_actions))
        self.value = (nn.Sequential(linear(dim, hidden_size), nn.ReLU(), linear(hidden_size, 1))
                      if dueling else None)

    def forward(self, features: torch.Tensor, taus: torch.Tensor) -> torch.Tensor:
        """Quantile values (B, N, n_actions) from state features (B, D) and taus (B, N)."""
        x = features.unsqueeze(1) * self.tau_embedding(cosine_embedding(taus, self.embedding_dim))
        advantage = self.advantage(x)
        if self.value is None:
            return advantage
        return self.value(x) + advantage - advantage.mean(-1, keepdim=True)

    def noisy_layers(self) -> list[NoisyLinear]:
        return [m for m in self.modules() if isinstance(m, NoisyLinear)]


class IQNPolicy(BasePolicy):
    """Online and target :class:`IQNNetwork` with their encoders; acts greedily on the mean
    of ``n_policy_quantiles`` sampled quantiles (IQN's K).

    Args:
        observation_space, action_space, lr_schedule: as every SB3 policy.
        features_extractor_class, features_extractor_kwargs: the encoder.
        normalize_images: scale uint8 images to [0, 1].
        optimizer_class, optimizer_kwargs: the optimizer (Adam, eps 1.5e-4 in Dopamine).
        embedding_dim, hidden_size, dueling, noisy, noisy_std: see :class:`IQNNetwork`.
        n_policy_quantiles: K, quantiles averaged to pick actions (IQN: 32).
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete,
                 lr_schedule, features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN,
                 features_extractor_kwargs: Optional[dict[str, Any]] = None,
                 normalize_images: bool = True,
                 optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
                 optimizer_kwargs: Optional[dict[str, Any]] = None, embedding_dim: int = 64,
                 hidden_size: int = 512, dueling: bool = False, noisy: bool = False,
                 noisy_std: float = 0.1, n_policy_quantiles: int = 32):
        super().__init__(observation_space, action_space, features_extractor_class,
                         features_extractor_kwargs or {}, normalize_images=normalize_images,
                         optimizer_class=optimizer_class, optimizer_kwargs=optimizer_kwargs)
        self.net_kwargs = dict(embedding_dim=embedding_dim, hidden_size=hidden_size,
                               dueling=dueling, noisy=noisy, noisy_std=noisy_std)
        self.n_policy_quantiles = n_policy_quantiles
        self.q_net = self._make_net()
        self.q_net_target = self._make_net()
        self.q_net_target.load_state_dict(self.q_net.state_dict())
        self.q_net_target.train(False)
        self.optimizer = self.optimizer_class(self.q_net.parameters(), lr=lr_schedule(1),
                                              **self.optimizer_kwargs)

    def _make_net(self) -> IQNNetwork:
        return IQNNetwork(self.make_features_extractor(), int(self.action_space.n),
                          **self.net_kwargs)

    def features(self, net: IQNNetwork, obs: torch.Tensor) -> torch.Tensor:
        """``net``'s encoder on (unpreprocessed) ``obs``: (B, D)."""
        return self.extract_features(obs, net.features_extractor)

    def q_values(self, net: IQNNetwork, features: torch.Tensor) -> torch.Tensor:
        """Mean over K uniformly sampled quantiles: (B, A)."""
        taus = torch.rand(len(features), self.n_policy_quantiles, device=features.device)
        return net(features, taus).mean(1)

    def forward(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return self._predict(obs, deterministic)

    def _predict(self, observation: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        # greedy evaluation also switches off parameter noise (mean weights)
        layers = self.q_net.noisy_layers()
        for layer in layers:
            layer.use_noise = not deterministic
        try:
            return self.q_values(self.q_net, self.features(self.q_net, observation)).argmax(1)
        finally:
            for layer in layers:
                layer.use_noise = True

    def reset_noise(self) -> None:
        for layer in self.q_net.noisy_layers() + self.q_net_target.noisy_layers():
            layer.reset_noise()

    def set_training_mode(self, mode: bool) -> None:
        self.q_net.train(mode)
        self.training = mode

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self.net_kwargs, n_policy_quantiles=self.n_policy_quantiles,
                    lr_schedule=self._dummy_schedule,
                    features_extractor_class=self.features_extractor_class,
                    features_extractor_kwargs=self.features_extractor_kwargs,
                    optimizer_class=self.optimizer_class, optimizer_kwargs=self.optimizer_kwargs)
        return data

