"""PPO with pluggable recurrent cores (lstm, gru, rims).

Class paths: ``agents.ppo.ChunkedRecurrentPPO`` (the trainer), ``agents.ppo.CnnRIMsPolicy``,
``agents.ppo.MlpRIMsPolicy``, ``agents.ppo.MultiInputRIMsPolicy`` (RIMs core by default) and
``agents.ppo.CnnCorePolicy``, ``MlpCorePolicy``, ``MultiInputCorePolicy`` (any core through
``policy_kwargs=dict(core=dict(name=...))``).
"""

from agents.ppo.policies import (CnnCorePolicy, CnnRIMsPolicy, MlpCorePolicy, MlpRIMsPolicy,
                                 MultiInputCorePolicy, MultiInputRIMsPolicy, RecurrentCorePolicy)
from agents.ppo.ppo import ChunkedRecurrentPPO

__all__ = ["ChunkedRecurrentPPO", "RecurrentCorePolicy", "CnnCorePolicy", "MlpCorePolicy",
           "MultiInputCorePolicy", "CnnRIMsPolicy", "MlpRIMsPolicy", "MultiInputRIMsPolicy"]
