"""RLlib's default PPO network with the logits of illegal actions masked out, for TicTacToe-v0."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from gymnasium import spaces
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.utils.torch_utils import FLOAT_MIN


class ActionMaskingTorchRLModule(DefaultPPOTorchRLModule):
    """RLlib's default PPO actor-critic (MLP encoder, policy and value heads) that never picks an illegal action.

    The same idea as RLlib's own ``ActionMaskingTorchRLModule`` example (new API stack), written
    without mutating the batch it is given.

    ## Observation Space
    ``Dict(action_mask=Box(0, 1, (n,)), observations=...)``, what
    :class:`text_envs.shaping.ActionMaskObservation` makes of an env that reports
    ``info["action_mask"]`` (TicTacToe-v0: see :func:`text_envs_agents.rllib.tictactoe_env_creator`). The
    networks are the ones RLlib's ``PPOCatalog`` builds for the ``observations`` space alone
    (``model_config`` as for any default module, e.g. ``fcnet_hiddens``); the mask is not an input.

    ## Action Space
    ``Discrete(n)``.

    ## Masking
    In every forward pass (exploration, inference and training), the logits of actions whose mask
    is 0 are replaced by ``FLOAT_MIN`` (-3.4e38): their probability after the softmax is exactly 0,
    so they are never sampled, and the training forward masks the same way, so PPO's probability
    ratio compares the distributions that were sampled from. ``FLOAT_MIN`` rather than ``-inf``
    keeps a row with no legal action (the terminal observation of a game) finite: it becomes a
    uniform distribution instead of NaN. The value head does not see the mask.
    """

    def __init__(self, *, observation_space: gym.Space | None = None, **kwargs: Any):
        _check_masked_space(observation_space, kwargs.get("action_space"))
        # RLlib's catalog builds the networks for the space it is given: the unmasked observations.
        super().__init__(observation_space=observation_space["observations"], **kwargs)
        # RLlib re-creates modules (on env runners, from checkpoints) from this attribute: the full space.
        self.observation_space = observation_space

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        action_mask, batch = _split_mask(batch)
        return _mask_logits(super()._forward(batch, **kwargs), action_mask)

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        action_mask, batch = _split_mask(batch)
        return _mask_logits(super()._forward_train(batch, **kwargs), action_mask)

    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> torch.Tensor:
        """Values ``(batch,)`` of the observations (from ``embeddings`` of a training forward when given)."""
        if embeddings is None:
            _, batch = _split_mask(batch)
        return super().compute_values(batch, embeddings)


def _split_mask(batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
    """The mask, and a shallow copy of ``batch`` whose observations are the unmasked ones."""
    observations = batch[Columns.OBS]
    return observations["action_mask"], {**batch, Columns.OBS: observations["observations"]}


def _mask_logits(output: dict[str, Any], action_mask: torch.Tensor) -> dict[str, Any]:
    logits = output[Columns.ACTION_DIST_INPUTS]
    output[Columns.ACTION_DIST_INPUTS] = logits.masked_fill(action_mask <= 0, FLOAT_MIN)
    return output


def _check_masked_space(observation_space: gym.Space | None, action_space: gym.Space | None) -> None:
    if not isinstance(observation_space, spaces.Dict) or set(observation_space.spaces) != {
        "action_mask",
        "observations",
    }:
        raise ValueError(
            "ActionMaskingTorchRLModule needs Dict(action_mask=Box(0, 1, (n,)), observations=...) observations: "
            f"wrap the env in text_envs.shaping.ActionMaskObservation; got {observation_space}"
        )
    if not isinstance(action_space, spaces.Discrete) or observation_space["action_mask"].shape != (action_space.n,):
        raise ValueError(
            f"the action mask has shape {observation_space['action_mask'].shape}; it needs one entry per action "
            f"of a Discrete action space, got {action_space}"
        )
