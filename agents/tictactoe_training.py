"""Training Tic-Tac-Toe agents on ``TicTacToe-v0``: stable-baselines3 / sb3-contrib algorithms and tabular Q-learning.

:func:`train_tictactoe_agent` is what ``text-envs-train-tictactoe`` and the benchmark
(:mod:`text_envs_agents.benchmark`) both call, with the settings in :data:`HYPERPARAMETERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gymnasium.vector import AutoresetMode

from text_envs.agent_protocol import Agent
from text_envs.tictactoe.vector_env import TicTacToeVectorEnv
from text_envs_agents.hyperparams import algorithm_kwargs
from text_envs_agents.q_learning import QLearningAgent

ENV_ID = "text_envs/TicTacToe-v0"
ALGORITHMS = ("maskable_ppo", "ppo", "a2c", "dqn", "qlearning")

ProgressCallback = Callable[[Agent, int], None]
"""Called as ``callback(agent, moves)`` during training, with the agent moves made so far."""


# MaskablePPO's tuned settings live in the RL Zoo file text_envs_agents/hyperparams/ppo_mask.yml (see
# hyperparameters()). The other algorithms' settings are reasonable starting points; README "Results"
# shows what they reach.
HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "ppo": dict(
        n_steps=128,
        batch_size=256,
        n_epochs=4,
        learning_rate=1e-3,
        gamma=0.99,
        ent_coef=0.01,
        policy_kwargs=dict(net_arch=[128, 128]),
    ),
    "a2c": dict(n_steps=8, learning_rate=7e-4, gamma=0.99, ent_coef=0.01, policy_kwargs=dict(net_arch=[128, 128])),
    "dqn": dict(
        learning_rate=5e-4,
        buffer_size=100_000,
        learning_starts=1_000,
        batch_size=128,
        gamma=0.99,
        target_update_interval=1_000,
        exploration_fraction=0.3,
        exploration_final_eps=0.02,
        train_freq=4,
        policy_kwargs=dict(net_arch=[128, 128]),
    ),
    "qlearning": dict(learning_rate=0.3, gamma=1.0, exploration_fraction=0.5),
}


def hyperparameters(algo: str) -> dict[str, Any]:
    """The constructor settings of ``algo``: MaskablePPO's read from the shipped RL Zoo YAML (one source of
    truth, read on use so that Q-learning users load neither YAML nor torch), the others from
    :data:`HYPERPARAMETERS`."""
    if algo == "maskable_ppo":
        return algorithm_kwargs("ppo_mask", ENV_ID)
    return HYPERPARAMETERS[algo]


def train_tictactoe_agent(
    algo: str,
    timesteps: int,
    seed: int = 0,
    opponent: str = "minimax",
    opponent_epsilon: float = 0.5,
    agent_first: bool | None = None,
    n_envs: int = 8,
    tensorboard_log: str | Path | None = None,
    progress_bar: bool = False,
    callback: ProgressCallback | None = None,
    callback_interval: int = 10_000,
) -> Agent:
    """Train ``algo`` (one of :data:`ALGORITHMS`) for ``timesteps`` agent moves and return the trained agent.

    Training games are against ``opponent`` (``"random"`` or ``"minimax"``, the latter playing a random
    move with probability ``opponent_epsilon``), on the side ``agent_first`` (``None`` alternates).
    SB3 algorithms run ``n_envs`` envs (``make_vec_env``); Q-learning runs ``32 * n_envs`` boards of
    :class:`~text_envs.tictactoe.vector_env.TicTacToeVectorEnv`. ``seed`` seeds the algorithm and the envs.
    ``callback(agent, moves)`` is called before the first move (``moves = 0``) and each time the moves
    made pass a multiple of ``callback_interval`` (e.g. to evaluate the agent for a learning curve).
    """
    if algo not in ALGORITHMS:
        raise ValueError(f"algo must be one of {ALGORITHMS}, got {algo!r}")
    if callback_interval < 1:
        raise ValueError(f"callback_interval must be positive, got {callback_interval}")
    env_kwargs = dict(opponent=opponent, opponent_epsilon=opponent_epsilon, agent_first=agent_first)
    reported = 0

    def report(agent: Agent, moves: int) -> None:
        nonlocal reported
        if callback is not None and (moves == 0 or moves // callback_interval > reported // callback_interval):
            callback(agent, moves)
        reported = moves

    if algo == "qlearning":
        agent = QLearningAgent(**hyperparameters("qlearning"), seed=seed)
        env = TicTacToeVectorEnv(32 * n_envs, autoreset_mode=AutoresetMode.SAME_STEP, **env_kwargs)
        report(agent, 0)
        return agent.learn(env, total_timesteps=timesteps, progress_bar=progress_bar, callback=report)

    from stable_baselines3 import A2C, DQN, PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    if algo == "maskable_ppo":
        try:
            from sb3_contrib import MaskablePPO as algorithm_class
        except ImportError:
            raise ImportError('maskable_ppo needs sb3-contrib: pip install "text_envs[sb3-contrib]"') from None
    else:
        algorithm_class = {"ppo": PPO, "a2c": A2C, "dqn": DQN}[algo]

    class Report(BaseCallback):
        def _on_training_start(self) -> None:
            report(self.model, 0)

        def _on_step(self) -> bool:
            report(self.model, self.num_timesteps)
            return True

    vec_env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs)
    model = algorithm_class(
        "MlpPolicy",
        vec_env,
        seed=seed,
        verbose=0,
        tensorboard_log=None if tensorboard_log is None else str(tensorboard_log),
        **hyperparameters(algo),
    )
    return model.learn(total_timesteps=timesteps, progress_bar=progress_bar, tb_log_name=algo, callback=Report())
