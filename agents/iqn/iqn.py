"""Implicit Quantile Networks (Dabney et al., 2018) with switchable Rainbow components
(Hessel et al., 2018) on SB3's off-policy machinery: n-step returns and proportional
prioritized replay (in :class:`~rimrl.agents.iqn.replay.FrameReplayBuffer`), dueling and noisy heads
(in :class:`~rimrl.agents.iqn.policies.IQNPolicy`), double Q (here).

One gradient step, top to bottom (:meth:`IQN.train`): sample a batch with importance weights
-> pick the next action from the mean of K quantiles (online net with double Q, target net
without) -> target quantiles ``R + gamma^m (1 - done) Z_target(s', a*; tau')`` for N' taus
-> online quantiles ``Z(s, a; tau)`` for N taus -> quantile Huber loss per sample -> weighted
mean, Adam step -> the per-sample losses become the new priorities.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from rimrl.agents.iqn.policies import IQNPolicy
from rimrl.agents.iqn.replay import FrameReplayBuffer


def quantile_huber_loss(current: torch.Tensor, target: torch.Tensor, taus: torch.Tensor,
                        kappa: float = 1.0) -> torch.Tensor:
    """IQN's loss per sample (eq. 3 of Dabney et al., 2018): for every pair of a current
    quantile ``i`` (at ``taus[i]``) and a target sample ``j``, with ``u = target_j - current_i``,
    ``|tau_i - 1{u < 0}| * huber_kappa(u) / kappa``; mean over ``j``, sum over ``i``.

    Args:
        current: (B, N) online quantile values.
        target: (B, N') target samples (no gradient needed).
        taus: (B, N) the quantile fractions of ``current``.
        kappa: Huber threshold (> 0).
    Returns:
        (B,) losses.
    """
    u = target.unsqueeze(1) - current.unsqueeze(2)  # (B, N, N')
    abs_u = u.abs()
    huber = torch.where(abs_u <= kappa, 0.5 * u.pow(2), kappa * (abs_u - 0.5 * kappa))
    weight = (taus.unsqueeze(2) - (u.detach() < 0).to(u.dtype)).abs()
    return (weight * huber / kappa).mean(2).sum(1)


def iqn_target(next_z: torch.Tensor, next_q: torch.Tensor, returns: torch.Tensor,
               discounts: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
    """Target samples ``R + gamma^m (1 - done) Z_target(s', a*; tau'_j)`` with
    ``a* = argmax next_q``.

    Args:
        next_z: (B, N', A) target-network quantiles at the next state.
        next_q: (B, A) action values that choose ``a*`` (online net with double Q).
        returns, discounts, dones: (B,) from the n-step window.
    Returns:
        (B, N').
    """
    action = next_q.argmax(1).view(-1, 1, 1).expand(-1, next_z.shape[1], 1)
    chosen = next_z.gather(2, action).squeeze(2)
    return returns.unsqueeze(1) + (discounts * (1 - dones)).unsqueeze(1) * chosen


def stacked_frames(env) -> int:
    """``n_stack`` of the first ``VecFrameStack`` in a VecEnv's wrapper chain, else 1."""
    from stable_baselines3.common.vec_env import VecFrameStack

    while env is not None:
        if isinstance(env, VecFrameStack):
            return int(env.stacked_obs.n_stack)
        env = getattr(env, "venv", None)
    return 1



class ReplayMismatch(ValueError):
    """A replay memory saved at another step than the model it would be loaded into."""

    def __init__(self, replay_step: int, model_step: int):
        super().__init__(f"the replay memory is from step {replay_step}, the model from step "
                         f"{model_step}")
        self.replay_step, self.model_step = replay_step, model_step

class IQN(OffPolicyAlgorithm):
    """IQN / Rainbow-IQN.

    Args:
        policy: :class:`IQNPolicy` (or its name ``"IQNPolicy"``).
        env: the (vectorized) env.
        learning_rate: Adam step size (Dopamine: 6.25e-5 with eps 1.5e-4 via policy_kwargs).
        buffer_size: replay capacity in transitions.
        learning_starts: env steps before the first gradient step.
        batch_size: transitions per gradient step.
        gamma: discount.
        train_freq: env steps (per env) between gradient phases.
        gradient_steps: gradient steps per phase.
        target_update_interval: env steps between hard target-network copies.
        n_quantiles: N, online quantile samples per transition.
        n_target_quantiles: N', target samples.
        kappa: Huber threshold of the quantile loss.
        n_steps: n-step returns.
        prioritized: proportional prioritized replay; ``alpha``, ``beta`` (annealed linearly to
            1 over training) as in Schaul et al. (2016).
        double_q: choose the next action with the online network (van Hasselt et al., 2016).
        frame_stack: frames per observation, so the replay stores each frame once (None:
            read from the env's ``VecFrameStack``, 1 without one).
        exploration_initial_eps, exploration_final_eps, exploration_steps: epsilon-greedy,
            decayed linearly over ``exploration_steps`` env steps. With noisy nets the
            parameter noise explores and epsilon is 0 (Rainbow).
        max_grad_norm: gradient clipping (None: off).
        policy_kwargs, seed, device, verbose, tensorboard_log: as in SB3.
    """

    policy_aliases = {"IQNPolicy": IQNPolicy}
    policy: IQNPolicy
    replay_buffer: FrameReplayBuffer

    def __init__(self, policy: Union[str, type[IQNPolicy]], env, learning_rate: float = 6.25e-5,
                 buffer_size: int = 1_000_000, learning_starts: int = 20_000,
                 batch_size: int = 32, gamma: float = 0.99, train_freq: int = 4,
                 gradient_steps: int = 1, target_update_interval: int = 8_000,
                 n_quantiles: int = 64, n_target_quantiles: int = 64, kappa: float = 1.0,
                 n_steps: int = 3, prioritized: bool = True, alpha: float = 0.5,
                 beta: float = 0.4, double_q: bool = True, frame_stack: Optional[int] = None,
                 exploration_initial_eps: float = 1.0, exploration_final_eps: float = 0.01,
                 exploration_steps: int = 250_000, max_grad_norm: Optional[float] = 10.0,
                 policy_kwargs: Optional[dict[str, Any]] = None, tensorboard_log=None,
                 verbose: int = 0, seed: Optional[int] = None, device: str = "auto",
                 _init_setup_model: bool = True):
        if frame_stack is None:
            frame_stack = stacked_frames(env)
        replay_kwargs = dict(frame_stack=frame_stack, n_steps=n_steps, gamma=gamma,
                             prioritized=prioritized, alpha=alpha, seed=seed)
        super().__init__(policy, env, learning_rate, buffer_size, learning_starts, batch_size,
                         tau=1.0, gamma=gamma, train_freq=train_freq,
                         gradient_steps=gradient_steps, action_noise=None,
                         replay_buffer_class=FrameReplayBuffer,
                         replay_buffer_kwargs=replay_kwargs, policy_kwargs=policy_kwargs,
                         tensorboard_log=tensorboard_log, verbose=verbose, device=device,
                         seed=seed, sde_support=False, supported_action_spaces=(spaces.Discrete,),
                         support_multi_env=True)
        self.target_update_interval = target_update_interval
        self.n_quantiles, self.n_target_quantiles = n_quantiles, n_target_quantiles
        self.kappa = kappa
        self.beta0, self.double_q, self.max_grad_norm = beta, double_q, max_grad_norm
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.exploration_steps = exploration_steps
        self.exploration_rate = exploration_initial_eps
        self._last_target_update = 0
        self._refill_until = 0
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------------- acting
    def _setup_model(self) -> None:
        super()._setup_model()
        # fixed once the networks exist: not looked up on every env step
        self._noisy = bool(self.policy.q_net.noisy_layers())

    def _on_step(self) -> None:
        """After each env step: epsilon and the hard target update."""
        if self._noisy:
            self.exploration_rate = 0.0
        else:
            frac = min(1.0, self.num_timesteps / max(self.exploration_steps, 1))
            self.exploration_rate = (self.exploration_initial_eps + frac
                                     * (self.exploration_final_eps - self.exploration_initial_eps))
        if self.num_timesteps - self._last_target_update >= self.target_update_interval:
            self.policy.q_net_target.load_state_dict(self.policy.q_net.state_dict())
            self._last_target_update = self.num_timesteps
        self.logger.record("rollout/exploration_rate", self.exploration_rate)

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        """Epsilon-greedy unless ``deterministic`` (then greedy, without parameter noise)."""
        if not deterministic and np.random.rand() < self.exploration_rate:
            n = observation.shape[0] if self.policy.is_vectorized_observation(observation) else None
            if n is None:
                return np.array(self.action_space.sample()), state
            return np.array([self.action_space.sample() for _ in range(n)]), state
        return self.policy.predict(observation, state, episode_start, deterministic)

    # ------------------------------------------------------------------------- learning
    def train(self, gradient_steps: int, batch_size: int = 32) -> None:
        if self.replay_buffer.tree.total <= 0 or self.num_timesteps < self._refill_until:
            return  # no complete n-step window yet, or refilling after a resume
        policy = self.policy
        policy.set_training_mode(True)
        self._update_learning_rate(policy.optimizer)
        beta = self.beta0 + (1.0 - self.beta0) * (1.0 - self._current_progress_remaining)
        losses = []
        for _ in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, beta=beta)
            if self._noisy:
                policy.reset_noise()
            with torch.no_grad():
                # one target-encoder pass on s' serves both the chosen action (without double
                # Q) and the target samples
                target_features = policy.features(policy.q_net_target, batch.next_observations)
                next_q = self.next_action_values(batch.next_observations, target_features)
                next_taus = torch.rand(batch_size, self.n_target_quantiles, device=self.device)
                next_z = policy.q_net_target(target_features, next_taus)
                target = iqn_target(next_z, next_q, batch.returns, batch.discounts, batch.dones)
            taus = torch.rand(batch_size, self.n_quantiles, device=self.device)
            z = policy.q_net(policy.features(policy.q_net, batch.observations), taus)
            z = z.gather(2, batch.actions.view(-1, 1, 1).expand(-1, z.shape[1], 1)).squeeze(2)
            per_sample = quantile_huber_loss(z, target, taus, self.kappa)
            loss = (batch.weights * per_sample).mean()
            policy.optimizer.zero_grad()
            loss.backward()
            if self.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(policy.q_net.parameters(), self.max_grad_norm)
            policy.optimizer.step()
            self.replay_buffer.update_priorities(batch.indices, per_sample.detach().cpu().numpy())
            losses.append(loss.item())
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(losses)))
        self.logger.record("train/beta", beta)

    def next_action_values(self, next_observations: torch.Tensor,
                           target_features: torch.Tensor) -> torch.Tensor:
        """Q(s', .) that picks the target's action a*: the online network with double Q
        (van Hasselt et al., 2016; a Rainbow component), else the target network, whose
        features of s' the caller already has."""
        policy = self.policy
        if self.double_q:
            online = policy.features(policy.q_net, next_observations)
            return policy.q_values(policy.q_net, online)
        return policy.q_values(policy.q_net_target, target_features)

    def _setup_learn(self, total_timesteps, callback=None, reset_num_timesteps=True,
                     tb_log_name="run", progress_bar=False):
        resets_env = reset_num_timesteps or self._last_obs is None
        result = super()._setup_learn(total_timesteps, callback, reset_num_timesteps,
                                      tb_log_name, progress_bar)
        if resets_env and self.replay_buffer is not None:
            # the env restarted mid-episode: stored streams end here
            self.replay_buffer.end_all_episodes()
            if self.replay_buffer.size() == 0 and self.num_timesteps > 0:
                # resumed without the replay memory: refill before learning again
                self._refill_until = self.num_timesteps + self.learning_starts
        return result

    def learn(self, total_timesteps: int, callback=None, log_interval: int = 4,
              tb_log_name: str = "IQN", reset_num_timesteps: bool = True,
              progress_bar: bool = False):
        return super().learn(total_timesteps, callback, log_interval, tb_log_name,
                             reset_num_timesteps, progress_bar)

    def save_replay_buffer(self, path) -> None:
        """The replay memory as an ``.npz`` of plain arrays: loading it runs no code (SB3
        pickles the buffer object). It records the step it belongs to (``step``), so a
        resume can tell it from the memory of another checkpoint. ``path``: a file name or
        an open binary file."""
        np.savez(path, step=np.array(self.num_timesteps, dtype=np.int64),
                 **self.replay_buffer.state_arrays())

    def load_replay_buffer(self, path, truncate_last_traj: bool = True) -> None:
        """Restore :meth:`save_replay_buffer`'s arrays into this model's memory (same size
        and observation shape); pickled objects are refused, never run.

        Raises:
            ReplayMismatch: the memory was saved at another step than this model's (a kill
                between the checkpoint's write and the memory's); nothing is loaded.
            ValueError: the arrays do not fit this memory; nothing is loaded.
        """
        with np.load(path, allow_pickle=False) as state:
            if "step" in state.files and int(state["step"]) != self.num_timesteps:
                raise ReplayMismatch(int(state["step"]), self.num_timesteps)
            self.replay_buffer.load_state_arrays(state)

    def _excluded_save_params(self) -> list[str]:
        return super()._excluded_save_params() + ["q_net", "q_net_target"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []
