"""IQN with switchable Rainbow components (n-step, prioritized replay, dueling, double Q,
noisy nets) on SB3's off-policy machinery."""

from rimrl.agents.iqn.iqn import IQN, ReplayMismatch, iqn_target, quantile_huber_loss
from rimrl.agents.iqn.policies import IQNNetwork, IQNPolicy, NoisyLinear
from rimrl.agents.iqn.replay import FrameReplayBuffer, ReplaySamples

__all__ = ["IQN", "IQNNetwork", "IQNPolicy", "NoisyLinear", "FrameReplayBuffer",
           "ReplaySamples", "ReplayMismatch", "iqn_target", "quantile_huber_loss"]
