"""Recurrent actor-critic policies whose recurrent core is chosen by name (lstm, gru, rims).

:class:`RecurrentCorePolicy` is sb3-contrib's ``RecurrentActorCriticPolicy`` with its
``nn.LSTM`` replaced by a core from :mod:`rimrl.nn.cores`. It works with sb3-contrib's own
``RecurrentPPO`` unmodified and with :class:`rimrl.agents.ppo.ppo.ChunkedRecurrentPPO`::

    from sb3_contrib import RecurrentPPO
    from rimrl.agents.ppo import CnnRIMsPolicy
    model = RecurrentPPO(CnnRIMsPolicy, env, policy_kwargs=dict(core=dict(k_active=5)))

``core`` is a dict of :class:`rimrl.nn.cores.CoreConfig` fields (name, hidden_size,
num_units, k_active, dynamics, variant, ...) that *updates* the policy class's
``default_core``: above, the paper's Atari RIMs (510 units, GRU dynamics, the official code's
bounded communication) with k_A = 5; ``core=dict(variant="thesis")`` gives the thesis' text.

sb3-contrib's LSTM arguments: ``lstm_hidden_size`` is the core's ``hidden_size``;
``enable_critic_lstm`` (a second core for the critic) and ``shared_lstm`` (the critic reads
the actor's core) work as in sb3-contrib; ``n_lstm_layers`` other than 1 and ``lstm_kwargs``
(arguments of ``torch.nn.LSTM``) are refused in one line naming the rimrl equivalent
(:func:`check_lstm_arguments`). No ``nn.LSTM`` is built and discarded.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import torch
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import CombinedExtractor, FlattenExtractor
from torch import nn

from rimrl.nn.cores import CoreConfig, build_core
from rimrl.nn.encoders import NatureEncoder
from rimrl.nn.rims_settings import ATARI_RIMS

#: the RIMs policy classes' core: the paper's Atari RIMs with the official code's bounded
#: communication (``ATARI_RIMS``, also ``rimrl train ppo``'s). With the thesis variant's
#: unbounded write, sb3-contrib's default critic core (``enable_critic_lstm=True``) grew ~1.8x
#: per step within 2.3k CartPole steps (|h| 1e11 at a rollout's start) and training stopped on
#: NaN; gated, |h| stays bounded.
PYTHON_RIMS = ATARI_RIMS


class RecurrentCorePolicy(RecurrentActorCriticPolicy):
    """sb3-contrib's recurrent actor-critic with a named recurrent core (thesis ch. 8.4.3).

    Args:
        core: :class:`~rimrl.nn.cores.CoreConfig` fields as a dict, merged over the class's
            ``default_core`` (fields not given keep the class's value, then CoreConfig's), or
            a complete CoreConfig. The actor core, and the critic core when
            ``enable_critic_lstm``, are built from it.
        *args, **kwargs: as for ``RecurrentActorCriticPolicy``.

    The cores are ``core_actor`` and ``core_critic`` (``None`` without a critic core);
    sb3-contrib's code, which calls them ``lstm_actor``/``lstm_critic`` whatever they are,
    reaches them under those names too, and models saved with the old names still load.
    """

    #: the core this class builds when ``core`` does not say otherwise: an LSTM of 256
    default_core: dict = {"name": "lstm", "hidden_size": 256}

    def __init__(self, observation_space, action_space, lr_schedule, *args,
                 core: Optional[Any] = None, lstm_hidden_size: Optional[int] = None,
                 n_lstm_layers: int = 1, shared_lstm: bool = False,
                 enable_critic_lstm: bool = True, lstm_kwargs: Optional[dict] = None,
                 **kwargs):
        cfg = _core_config(self.default_core, core, lstm_hidden_size)
        check_one_policy(cfg)
        check_lstm_arguments(n_lstm_layers, lstm_kwargs, shared_lstm, enable_critic_lstm,
                             kwargs.get("share_features_extractor", True))
        self.core_config = cfg
        # sb3-contrib's own __init__ would build an nn.LSTM only to throw it away: its
        # attributes are set here instead, around ActorCriticPolicy's __init__
        ActorCriticPolicy.__init__(self, observation_space, action_space, lr_schedule, *args,
                                   **kwargs)
        self.lstm_kwargs = {}
        self.shared_lstm = shared_lstm
        self.enable_critic_lstm = enable_critic_lstm
        # a set encoder (e.g. grid-set) says how many elements its flat features hold
        elements = getattr(self.pi_features_extractor, "num_elements", 1)
        self.core_actor = build_core(self.features_dim, cfg, elements)
        self.core_critic = (build_core(self.features_dim, cfg, elements) if enable_critic_lstm
                            else None)
        # predict()'s first state: (layers, envs, state size), as sb3-contrib's
        self.lstm_hidden_state_shape = (1, 1, self.core_actor.hidden_size)
        self.critic = None
        if not (shared_lstm or enable_critic_lstm):  # the critic reads the features
            self.critic = (nn.Identity() if cfg.name == "none"
                           else nn.Linear(self.features_dim, self.lstm_output_dim))
        # parameters changed: rebuild the optimizer over the new ones
        self.optimizer = self.optimizer_class(self.parameters(), lr=self._initial_lr,
                                              **self.optimizer_kwargs)

    # sb3-contrib's names for the cores: its methods read and assign these
    lstm_actor = property(lambda self: self.core_actor)
    lstm_critic = property(lambda self: self.core_critic)

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(_CORE_NAMES.get(name, name), value)

    def load_state_dict(self, state_dict, *args, **kwargs):
        """Also loads weights saved under sb3-contrib's names (``lstm_actor.*``)."""
        renamed = {_renamed(key): value for key, value in state_dict.items()}
        return super().load_state_dict(renamed, *args, **kwargs)

    def _build(self, lr_schedule) -> None:
        self._initial_lr = lr_schedule(1)
        # the heads read the core's output; ``none`` passes the encoder's features through
        self.lstm_output_dim = (self.features_dim if self.core_config.name == "none"
                                else self.core_config.hidden_size)
        super()._build(lr_schedule)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["core"] = dataclasses.asdict(self.core_config)
        return data

    @staticmethod
    def _process_sequence(features, lstm_states, episode_starts, lstm):
        """One call to the core over the whole sequence; it resets state at episode starts.

        Same contract as sb3-contrib's version (batch ordered sequence by sequence), without
        its per-step Python loop whenever an episode starts inside the sequence.
        """
        n_seq = lstm_states[0].shape[1]
        sequence = features.reshape((n_seq, -1, lstm.input_size)).swapaxes(0, 1)
        starts = episode_starts.reshape((n_seq, -1)).swapaxes(0, 1)
        if torch.all(starts == 0.0):
            output, states = lstm(sequence, lstm_states)
        else:
            output, states = lstm(sequence, lstm_states, episode_starts=starts)
        return torch.flatten(output.transpose(0, 1), start_dim=0, end_dim=1), states


def check_one_policy(cfg: CoreConfig) -> None:
    """A ``ValueError`` if ``cfg`` builds a core whose output depends on the module's mode.

    sb3-contrib's RecurrentPPO collects a rollout with the policy in eval mode and updates it
    in train mode. Dropout (RIMs' ``input_dropout``, ``comm_dropout``) makes those two
    different policies: the first epoch's log-probabilities already differ from the ones
    stored at collection, and PPO's ratio and approx KL measure the dropout, not the update.
    """
    if cfg.name != "rims":
        return
    for name in ("input_dropout", "comm_dropout"):
        if getattr(cfg, name) > 0:
            raise ValueError(
                f"{name}={getattr(cfg, name)}: PPO acts with the policy in eval mode and "
                f"learns in train mode, so dropout would make it act with one policy and "
                f"learn with another; set {name}=0 (PPO's default)")


#: sb3-contrib's attribute names -> what they hold in a RecurrentCorePolicy
_CORE_NAMES = {"lstm_actor": "core_actor", "lstm_critic": "core_critic"}


def _renamed(key: str) -> str:
    head, _, rest = key.partition(".")
    return f"{_CORE_NAMES[head]}.{rest}" if head in _CORE_NAMES and rest else key


def _core_config(defaults: dict, core: Any, lstm_hidden_size: Optional[int] = None
                 ) -> CoreConfig:
    """``core`` (a CoreConfig, a dict of some of its fields, or None) over ``defaults``, with
    the RIMs ``variant`` it names (if any) between the two. sb3-contrib's ``lstm_hidden_size``
    is the core's ``hidden_size`` (a ``ValueError`` if ``core`` names another)."""
    if isinstance(core, CoreConfig):
        cfg = core
    else:
        given = dict(core or {})
        if lstm_hidden_size is not None:
            given.setdefault("hidden_size", lstm_hidden_size)
        cfg = CoreConfig(**CoreConfig.with_variant(defaults, given))
    if lstm_hidden_size is not None and cfg.hidden_size != lstm_hidden_size:
        raise ValueError(f"lstm_hidden_size={lstm_hidden_size} and core hidden_size="
                         f"{cfg.hidden_size} disagree; give one (core=dict(hidden_size=...))")
    return cfg


def check_lstm_arguments(n_lstm_layers: int, lstm_kwargs: Optional[dict], shared_lstm: bool,
                         enable_critic_lstm: bool, share_features_extractor: bool) -> None:
    """sb3-contrib's LSTM arguments that a rimrl core cannot honour, refused in one line each
    with the rimrl equivalent (``lstm_hidden_size`` maps to ``core["hidden_size"]``;
    ``shared_lstm`` and ``enable_critic_lstm`` work as in sb3-contrib)."""
    if n_lstm_layers != 1:
        raise ValueError(f"n_lstm_layers={n_lstm_layers}: rimrl cores have one layer; for more "
                         f"capacity raise core=dict(hidden_size=...) (RIMs: num_units)")
    if lstm_kwargs:
        raise ValueError(f"lstm_kwargs={lstm_kwargs} configure torch.nn.LSTM, which rimrl "
                         f"does not build; give CoreConfig fields as core=dict(...), e.g. "
                         f"core=dict(name='lstm', hidden_size=64)")
    if shared_lstm and enable_critic_lstm:
        raise ValueError("shared_lstm=True needs enable_critic_lstm=False (one core shared by "
                         "actor and critic, or a second one, not both)")
    if shared_lstm and not share_features_extractor:
        raise ValueError("shared_lstm=True needs share_features_extractor=True")


class MlpCorePolicy(RecurrentCorePolicy):
    """Vector observations (flattened), LSTM core of 256 by default."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("features_extractor_class", FlattenExtractor)
        super().__init__(*args, **kwargs)


class CnnCorePolicy(RecurrentCorePolicy):
    """Image observations with the Nature CNN, LSTM core of 256 by default."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("features_extractor_class", NatureEncoder)
        super().__init__(*args, **kwargs)


class MultiInputCorePolicy(RecurrentCorePolicy):
    """Dict observations (SB3's CombinedExtractor), LSTM core of 256 by default."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("features_extractor_class", CombinedExtractor)
        super().__init__(*args, **kwargs)


class MlpRIMsPolicy(MlpCorePolicy):
    """Vector observations with a RIMs core; defaults: the paper's Atari RIMs (6 RIMs of 85
    units, 4 active, GRU dynamics) in the official code's variant (:data:`PYTHON_RIMS`)."""

    default_core = PYTHON_RIMS


class CnnRIMsPolicy(CnnCorePolicy):
    """Nature CNN + RIMs core: the RIMs paper's Atari PPO policy; defaults: 6 RIMs of 85 units
    (510), 4 active, GRU dynamics (thesis 8.4.3), official variant (:data:`PYTHON_RIMS`)."""

    default_core = PYTHON_RIMS


class MultiInputRIMsPolicy(MultiInputCorePolicy):
    """Dict observations with a RIMs core; defaults: the paper's Atari RIMs (6 RIMs of 85
    units, 4 active, GRU dynamics), official variant (:data:`PYTHON_RIMS`)."""

    default_core = PYTHON_RIMS
