"""RLlib PPO on text_envs: env creators for the env runner processes, a callback, and one ``PPOConfig`` per env."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger
from ray.tune.registry import register_env

import text_envs  # noqa: F401  (registers the envs in every process that unpickles an env creator)
from text_envs.action_mask_observation import ActionMaskObservation
from text_envs_agents.rllib.action_masking import ActionMaskingTorchRLModule
from text_envs_agents.rllib.causal_lm import CausalLMTorchRLModule


def tictactoe_env_creator(env_config: dict[str, Any]) -> gym.Env:
    """``text_envs/TicTacToe-v0`` (``env_config`` as its keyword arguments) with the action mask in the observation."""
    return ActionMaskObservation(gym.make("text_envs/TicTacToe-v0", **env_config))


def text_generation_env_creator(env_config: dict[str, Any]) -> gym.Env:
    """``text_envs/TextGeneration-v0`` with ``env_config`` as its keyword arguments."""
    return gym.make("text_envs/TextGeneration-v0", **env_config)


def count_illegal_moves(*, episode: SingleAgentEpisode, metrics_logger: MetricsLogger, **kwargs: Any) -> None:
    """RLlib ``on_episode_end`` callback: logs ``illegal_moves``, the episodes that ended on an illegal move.

    Summed per training iteration over all env runners: ``result["env_runners"]["illegal_moves"]``.
    An episode counts when its last ``info`` has ``illegal_move=True`` (TicTacToe-v0's flag).
    """
    illegal = bool(episode.get_infos(-1).get("illegal_move", False))
    metrics_logger.log_value("illegal_moves", int(illegal), reduce="sum")


EPISODE_SCORE_SUM = "episode_score_sum"
"""The metric of :func:`log_episode_score`: ``result["env_runners"][EPISODE_SCORE_SUM]``."""


def log_episode_score(*, episode: SingleAgentEpisode, metrics_logger: MetricsLogger, **kwargs: Any) -> None:
    """RLlib ``on_episode_end`` callback: sums TextGeneration-v0's ``info["score"]``, the reward-model score of each
    completion, over a training iteration's episodes (read the mean with :func:`episode_score_mean`).

    A sum, not RLlib's ``reduce="mean"``, whose merges average means: only sums and counts add up exactly.
    """
    metrics_logger.log_value(EPISODE_SCORE_SUM, float(episode.get_infos(-1)["score"]), reduce="sum")


def episode_score_mean(result: dict[str, Any]) -> float | None:
    """The mean reward-model score of the episodes a training iteration finished (None: it finished none).

    RLlib's own ``episode_return_mean`` averages the last 100 episodes, several iterations' worth.
    """
    runners = result["env_runners"]
    episodes = runners.get("num_episodes", 0)
    return float(runners[EPISODE_SCORE_SUM]) / episodes if episodes and EPISODE_SCORE_SUM in runners else None


# Per env: its creator, its module, its callbacks and PPO settings.
# TicTacToe: games of at most 5 agent moves, reward at the end; with these settings the return against the
# random opponent rose from +0.14 to +0.67 in 5 iterations (seed 0).
# TextGeneration: for the 928k-parameter LM, an RLHF-scale learning rate (the benchmark's rllib-ppo tuning kept
# 1e-5: with no KL penalty, 2e-5 drifted twice as far for less score at 8,192 tokens), no discount over one
# completion, and a value-loss clip (PPO clips the squared error) wide enough for reward-model logits of about ±10.
_ENVS: dict[str, dict[str, Any]] = {
    "TicTacToe-v0": dict(
        creator=tictactoe_env_creator,
        module=ActionMaskingTorchRLModule,
        model_config={"fcnet_hiddens": [128, 128], "fcnet_activation": "relu"},
        callbacks={"on_episode_end": count_illegal_moves},
        training=dict(
            train_batch_size_per_learner=2000,
            minibatch_size=250,
            num_epochs=5,
            lr=1e-3,
            gamma=0.99,
            entropy_coeff=0.01,
        ),
    ),
    "TextGeneration-v0": dict(
        creator=text_generation_env_creator,
        module=CausalLMTorchRLModule,
        model_config={},
        callbacks={"on_episode_end": log_episode_score},
        training=dict(
            train_batch_size_per_learner=256,
            minibatch_size=64,
            num_epochs=2,
            lr=1e-5,
            gamma=1.0,
            lambda_=0.95,
            entropy_coeff=0.0,
            vf_clip_param=100.0,
        ),
    ),
}
ENV_NAMES = tuple(_ENVS)
"""The envs :func:`ppo_config` knows: ``text_envs/<name>``."""


def ppo_config(
    env: str,
    env_config: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    num_env_runners: int = 2,
    num_envs_per_env_runner: int = 1,
    seed: int = 0,
    **training: Any,
) -> PPOConfig:
    """RLlib's ``PPOConfig`` (new API stack) for ``text_envs/<env>`` with its module and default settings.

    - ``env``: one of :data:`ENV_NAMES`: ``"TicTacToe-v0"`` (:class:`ActionMaskingTorchRLModule`,
      counting illegal moves with :func:`count_illegal_moves`) or ``"TextGeneration-v0"``
      (:class:`CausalLMTorchRLModule`).
    - ``env_config``: keyword arguments of the env (e.g. ``{"opponent": "minimax"}``; for text,
      ``reward_model`` must be picklable: RLlib ships it to every env runner).
    - ``model_config``: merged over the env's module settings (e.g. ``{"model_name_or_path": ...}``, a
      registered name, Hub name or folder).
    - ``num_env_runners``: EnvRunner actors sampling in parallel, one CPU each (0: sample in the
      driver); ``num_envs_per_env_runner``: envs each runner steps as one batch.
    - ``seed``: RLlib's seed (modules, env resets, runners).
    - ``**training``: anything of ``PPOConfig.training`` (``train_batch_size_per_learner``,
      ``minibatch_size``, ``num_epochs``, ``lr``...) over the env's defaults.

    Devices are RLlib's to set on the returned config: ``.learners(num_gpus_per_learner=1)`` runs the
    update on a GPU (the modules need no ``device`` of their own; see :class:`CausalLMTorchRLModule`).

    The env's creator is registered with Ray (``register_env``) as ``text_envs_rllib/<env>``, the
    name the config gives RLlib. The env runners fetch the creator from Ray and unpickle it, which
    imports ``text_envs_agents.rllib`` and so ``text_envs``: the envs are registered in every runner process.
    On a cluster, every node needs this package and its dependencies installed.
    """
    if env not in _ENVS:
        raise ValueError(f"env must be one of {ENV_NAMES}, got {env!r}")
    settings = _ENVS[env]
    rllib_env_id = f"text_envs_rllib/{env}"
    register_env(rllib_env_id, settings["creator"])
    return (
        PPOConfig()
        .environment(env=rllib_env_id, env_config=dict(env_config or {}))
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=num_envs_per_env_runner)
        .training(**{**settings["training"], **training})
        .rl_module(
            rl_module_spec=RLModuleSpec(
                module_class=settings["module"], model_config={**settings["model_config"], **(model_config or {})}
            )
        )
        .callbacks(**settings["callbacks"])
        .debugging(seed=seed)
    )
