"""Models saved by an earlier rimrl still load and act: a ``model.zip`` names the classes it
was built from by import path (``rimrl.agents.ppo.policies``, ``rimrl.agents.iqn.policies``,
``rimrl.agents.iqn.replay``), so those paths are kept. The fixtures are tiny models saved at
commit 59cd036, before the shared SB3 runtime moved from ``rimrl/learners`` to ``rimrl/sb3``."""

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["ppo_before_sb3_move.zip", "iqn_before_sb3_move.zip"])
def test_a_model_saved_before_the_move_loads_and_acts(name):
    from rimrl.agents.iqn import IQN, IQNPolicy
    from rimrl.agents.ppo import ChunkedRecurrentPPO, RecurrentCorePolicy
    from rimrl.nn.rims import RIMs

    recurrent = name.startswith("ppo")
    cls = ChunkedRecurrentPPO if recurrent else IQN
    model = cls.load(FIXTURES / name, device="cpu")
    assert isinstance(model.policy, RecurrentCorePolicy if recurrent else IQNPolicy)
    if recurrent:  # the core a RIMs policy was saved with is RIMs again
        assert any(isinstance(m, RIMs) for m in model.policy.modules())
    obs = np.zeros((2, 3), dtype=np.float32)
    actions, state = model.predict(obs, episode_start=np.ones(2, dtype=bool),
                                   deterministic=True)
    assert actions.shape == (2,) and set(actions.tolist()) <= {0, 1}
    if recurrent:
        actions, _ = model.predict(obs, state=state, episode_start=np.zeros(2, dtype=bool))
        assert actions.shape == (2,)
