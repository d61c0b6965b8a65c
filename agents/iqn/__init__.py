"""IQN with switchable Rainbow components (n-step, prioritized replay, dueling, double Q,
noisy nets) on SB3's off-policy machinery."""

from agents.iqn.iqn import IQN, iqn_target, quantile_huber_loss
from agents.iqn.policies import IQNNetwork, IQNPolicy, NoisyLinear
from agents.iqn.replay import FrameReplayBuffer, ReplaySamples

__all__ = ["IQN", "IQNNetwork", "IQNPolicy", "NoisyLinear", "FrameReplayBuffer",
           "ReplaySamples", "iqn_target", "quantile_huber_loss"]
