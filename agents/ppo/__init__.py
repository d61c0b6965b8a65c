"""PPO with pluggable recurrent cores (lstm, gru, rims).

Class paths: ``rimrl.agents.ppo.ChunkedRecurrentPPO`` (the trainer), ``rimrl.agents.ppo.CnnRIMsPolicy``,
``rimrl.agents.ppo.MlpRIMsPolicy``, ``rimrl.agents.ppo.MultiInputRIMsPolicy`` (RIMs core by default) and
``rimrl.agents.ppo.CnnCorePolicy``, ``MlpCorePolicy``, ``MultiInputCorePolicy`` (any core through
``policy_kwargs=dict(core=dict(name=...))``).
"""

from rimrl.agents.ppo.policies import (CnnCorePolicy, CnnRIMsPolicy, MlpCorePolicy, MlpRIMsPolicy,
                                 MultiInputCorePolicy, MultiInputRIMsPolicy, RecurrentCorePolicy)
from rimrl.agents.ppo.ppo import ChunkedRecurrentPPO

__all__ = ["ChunkedRecurrentPPO", "RecurrentCorePolicy", "CnnCorePolicy", "MlpCorePolicy",
           "MultiInputCorePolicy", "CnnRIMsPolicy", "MlpRIMsPolicy", "MultiInputRIMsPolicy"]
