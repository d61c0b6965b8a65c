"""rimrl's policy classes as drop-ins for sb3-contrib's: the argument combinations of
sb3-contrib's own RecurrentPPO tests (tests/test_lstm.py: separate, shared and no critic
core, Dict observations, several envs, save/load/predict with episode_start, gSDE), run
against every rimrl policy class, and every LSTM argument either honoured or refused."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.envs.classic_control import PendulumEnv
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env

from rimrl.agents import ppo as policies
from rimrl.envs.testing import CueDictEnv, CueImageEnv, CueVectorEnv

#: a small core per class: the LSTM classes' own default name, RIMs shrunk
SMALL = {"lstm": dict(hidden_size=8), "rims": dict(hidden_size=12, num_units=3, k_active=2,
                                                    input_key_size=4, comm_key_size=4,
                                                    comm_value_size=4)}
CLASSES = {  # class -> (env maker, core kind)
    policies.MlpCorePolicy: (CueVectorEnv, "lstm"),
    policies.MlpRIMsPolicy: (CueVectorEnv, "rims"),
    policies.CnnCorePolicy: (CueImageEnv, "lstm"),
    policies.CnnRIMsPolicy: (CueImageEnv, "rims"),
    policies.MultiInputCorePolicy: (CueDictEnv, "lstm"),
    policies.MultiInputRIMsPolicy: (CueDictEnv, "rims"),
}
#: sb3-contrib test_lstm.py's policy_kwargs combinations
PATTERNS = [dict(), dict(enable_critic_lstm=False), dict(shared_lstm=True,
                                                         enable_critic_lstm=False)]


def make(policy, n_envs=1, **policy_kwargs):
    env_class, kind = CLASSES[policy]
    extra = dict(features_extractor_kwargs=dict(features_dim=16)) if "Cnn" in policy.__name__ \
        else {}
    return RecurrentPPO(policy, make_vec_env(env_class, n_envs=n_envs), n_steps=16,
                        batch_size=16, n_epochs=1, seed=0,
                        policy_kwargs=dict(core=SMALL[kind], **extra, **policy_kwargs))


@pytest.mark.parametrize("pattern", PATTERNS, ids=["critic-core", "no-critic-core", "shared"])
@pytest.mark.parametrize("policy", list(CLASSES), ids=lambda c: c.__name__)
def test_usage_patterns_learn_save_load_predict(tmp_path, policy, pattern):
    model = make(policy, n_envs=2, **pattern)
    assert (model.policy.core_critic is not None) == pattern.get("enable_critic_lstm", True)
    model.learn(32)
    model.save(tmp_path / "model.zip")
    loaded = RecurrentPPO.load(tmp_path / "model.zip")
    env = model.get_env()
    obs = env.reset()
    starts = np.ones(env.num_envs, dtype=bool)
    state = loaded_state = None
    for _ in range(6):  # predict with state and episode starts, as sb3-contrib's tests do
        action, state = model.predict(obs, state=state, episode_start=starts,
                                      deterministic=True)
        again, loaded_state = loaded.predict(obs, state=loaded_state, episode_start=starts,
                                             deterministic=True)
        assert np.array_equal(action, again)
        assert np.allclose(state[0], loaded_state[0], atol=1e-6)
        obs, _, dones, _ = env.step(action)
        starts = dones
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key]), key


def test_gsde_with_a_continuous_action_space():
    model = RecurrentPPO(policies.MlpRIMsPolicy, make_vec_env(PendulumEnv, n_envs=2),
                         n_steps=16, batch_size=16, n_epochs=1, use_sde=True, sde_sample_freq=4,
                         policy_kwargs=dict(core=SMALL["rims"]))
    model.learn(32)
    assert isinstance(model.action_space, spaces.Box) and model.policy.use_sde


def test_lstm_hidden_size_is_the_core_size_and_matches_sb3_contrib():
    """The LSTM core classes with ``lstm_hidden_size=4`` have exactly the parameters of
    sb3-contrib's ``MlpLstmPolicy`` with the same argument; for RIMs it is the total size."""
    env = make_vec_env(CueVectorEnv)
    ours = RecurrentPPO(policies.MlpCorePolicy, env, policy_kwargs=dict(lstm_hidden_size=4))
    theirs = RecurrentPPO("MlpLstmPolicy", env, policy_kwargs=dict(lstm_hidden_size=4))
    count = lambda m: sum(p.numel() for p in m.policy.parameters())  # noqa: E731
    assert count(ours) == count(theirs)
    assert ours.policy.core_actor.hidden_size == 4
    rims = RecurrentPPO(policies.MlpRIMsPolicy, env, policy_kwargs=dict(lstm_hidden_size=12))
    assert rims.policy.core_config.hidden_size == 12
    assert not any(isinstance(m, torch.nn.LSTM) and type(m) is torch.nn.LSTM
                   for m in rims.policy.modules())  # no discarded nn.LSTM


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_lstm_layers=2), "n_lstm_layers=2: rimrl cores have one layer"),
    (dict(lstm_kwargs=dict(dropout=0.5)), "lstm_kwargs={'dropout': 0.5} configure torch.nn.LSTM"),
    (dict(lstm_hidden_size=4, core=dict(hidden_size=8)), "lstm_hidden_size=4 and core "
                                                           "hidden_size=8 disagree"),
    (dict(shared_lstm=True), "shared_lstm=True needs enable_critic_lstm=False"),
    (dict(lstm_hidden_size=4, core=dict(name="rims")), "hidden_size 4 is not a positive "
                                                        "multiple of num_units 6"),
])
def test_arguments_a_core_cannot_honour_are_refused_in_one_line(kwargs, message):
    with pytest.raises(Exception, match=message) as error:
        RecurrentPPO(policies.MlpCorePolicy, make_vec_env(CueVectorEnv), policy_kwargs=kwargs)
    assert "\n" not in str(error.value)
