"""PPO acts and learns with one policy: the log-probabilities the first update epoch computes
for a rollout's actions, before any optimiser step, equal the ones stored at collection.

sb3-contrib collects in eval mode and updates in train mode, so anything mode-dependent in a
core (RIMs' dropout) makes the two differ; ``check_one_policy`` refuses it and these tests
fail if a core's output ever depends on the mode again."""

import pytest

from rimrl.agents.ppo.policies import check_one_policy
from rimrl.learners import get
from rimrl.sb3.environments import make_env
from rimrl.learners.ppo import build_model
from rimrl.nn.cores import CoreConfig
from tests.conftest import PPO

TINY = ["env.id=rimrl/CueVector-v0", "env.n_envs=2"] + PPO


def first_epoch_gap(core: str, critic_core: bool, force_dropout: float = 0.0) -> float:
    """Largest |log-prob at the first minibatch of the first epoch - log-prob stored at
    collection| for one rollout of a tiny PPO run built as ``rimrl train ppo`` builds it."""
    cfg = get("ppo").load_config(TINY + [f"core.name={core}",
                                         f"policy.enable_critic_lstm={critic_core}"])
    model = build_model(cfg, make_env(cfg))
    if force_dropout:  # what the check refuses, to show the gap it prevents
        for cell in (model.policy.core_actor.cell, getattr(model.policy.core_critic, "cell",
                                                           None)):
            if cell is not None:
                cell.input_dropout = cell.comm_dropout = force_dropout
    batches, gaps = [], []
    buffer_get = model.rollout_buffer.get
    evaluate_actions = model.policy.evaluate_actions

    def recording_get(*args, **kwargs):
        for batch in buffer_get(*args, **kwargs):
            batches.append(batch)
            yield batch

    def recording_evaluate(*args, **kwargs):
        values, log_prob, entropy = evaluate_actions(*args, **kwargs)
        if not gaps:  # the first minibatch: no optimiser step has been taken yet
            assert model.policy.training
            gaps.append((log_prob - batches[0].old_log_prob).abs().max().item())
        return values, log_prob, entropy

    model.rollout_buffer.get = recording_get
    model.policy.evaluate_actions = recording_evaluate
    model.learn(total_timesteps=64)
    return gaps[0]


@pytest.mark.parametrize("critic_core", [False, True])
@pytest.mark.parametrize("core", ["rims", "lstm", "gru", "none"])
def test_first_epoch_log_probs_equal_the_rollouts(core, critic_core):
    assert first_epoch_gap(core, critic_core) < 1e-5


def test_dropout_makes_two_policies_and_is_refused():
    """With the official code's dropout (0.1) the first epoch already disagrees with the
    rollout it learns from; PPO's config and the policy classes refuse it in one line."""
    assert first_epoch_gap("rims", False, force_dropout=0.1) > 1e-5  # the test above would fail
    with pytest.raises(ValueError, match="comm_dropout=0.1: PPO acts with the policy in eval "
                                         "mode and learns in train mode"):
        check_one_policy(CoreConfig(name="rims", hidden_size=12, num_units=3, k_active=2,
                                    comm_dropout=0.1))
    check_one_policy(CoreConfig(name="lstm", hidden_size=12, comm_dropout=0.1))  # unread


def test_policy_classes_refuse_dropout():
    from sb3_contrib import RecurrentPPO

    from rimrl.agents.ppo import MlpRIMsPolicy
    from rimrl.envs.testing import CueVectorEnv

    with pytest.raises(ValueError, match="input_dropout=0.1"):
        RecurrentPPO(MlpRIMsPolicy, CueVectorEnv(), n_steps=8,
                     policy_kwargs=dict(core=dict(variant="official")))
    model = RecurrentPPO(MlpRIMsPolicy, CueVectorEnv(), n_steps=8)
    assert model.policy.core_config.input_dropout == 0.0
