"""Tabular Q-learning on Tic-Tac-Toe: the classic trial-and-error baseline."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from tqdm import tqdm

from text_envs.tictactoe import rules
from text_envs_agents.base import BaseAgent

FORMAT = "text_envs.QLearningAgent/1"


class QLearningAgent(BaseAgent):
    """One Q-value per (board, move) over all 3^9 boards, learned by one-step Q-learning.

    The agent learns Q(s, a), where ``s`` is the board the agent faces and the
    next state is the board after the opponent's reply, so the opponent is part of the
    environment. Rewards are the env's (+1 win, 0 draw, -1 loss), undiscounted by default since a
    game lasts at most five agent moves.

    :meth:`learn` plays a :class:`~gymnasium.vector.VectorEnv` of Tic-Tac-Toe boards (``SAME_STEP``
    autoreset, ``info["action_mask"]``) with epsilon-greedy exploration among legal moves, epsilon
    decaying linearly from ``exploration_initial_eps`` to ``exploration_final_eps`` over
    ``exploration_fraction`` of the run. Updates of the same (board, move) pair within one batch
    are averaged, so a large batch does not multiply the learning rate.

    :meth:`predict` plays greedily (ties by lowest cell when ``deterministic=True``, at random
    otherwise), restricted to the legal moves. Saved as safetensors (Q table) with the
    hyper-parameters in its metadata; no pickle.
    """

    def __init__(
        self,
        learning_rate: float = 0.3,
        gamma: float = 1.0,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        exploration_fraction: float = 0.5,
        seed: int | None = None,
    ):
        super().__init__(seed)
        self.learning_rate = learning_rate
        self.gamma = gamma
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.exploration_fraction = exploration_fraction
        self.q_values = np.zeros((rules.NUM_STATES, rules.NUM_CELLS), dtype=np.float32)
        self.num_timesteps = 0

    def act(self, observations: np.ndarray, action_masks: np.ndarray | None, deterministic: bool) -> np.ndarray:
        states = rules.state_from_observation(observations)
        legal = rules.LEGAL_MOVES[states].astype(bool) if action_masks is None else action_masks
        return self._greedy(states, legal, deterministic)

    def _greedy(self, states: np.ndarray, legal: np.ndarray, deterministic: bool) -> np.ndarray:
        values = np.where(legal, self.q_values[states], -np.inf)
        best = (values == values.max(axis=1, keepdims=True)) & legal
        return self.choose_among(best, deterministic)

    def exploration_rate(self, progress: float) -> float:
        """Epsilon after ``progress`` (0..1) of the run."""
        fraction = min(1.0, progress / self.exploration_fraction) if self.exploration_fraction > 0 else 1.0
        return self.exploration_initial_eps + fraction * (self.exploration_final_eps - self.exploration_initial_eps)

    def learn(
        self,
        env: VectorEnv,
        total_timesteps: int,
        progress_bar: bool = False,
        callback: Callable[[QLearningAgent, int], None] | None = None,
    ) -> QLearningAgent:
        """Train for ``total_timesteps`` agent moves (summed over boards) on a vector env.

        ``callback(agent, moves)``, if given, is called after every batched step with the moves made so far
        in this call.
        """
        if env.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError("QLearningAgent.learn needs a vector env with autoreset_mode=AutoresetMode.SAME_STEP")
        observations, info = env.reset(seed=int(self.rng.integers(2**31)))
        steps = 0
        with tqdm(total=total_timesteps, disable=not progress_bar, unit="step") as bar:
            while steps < total_timesteps:
                states = rules.state_from_observation(observations)
                legal = info["action_mask"].astype(bool)
                epsilon = self.exploration_rate(steps / total_timesteps)
                explore = self.rng.random(len(states)) < epsilon
                actions = np.where(
                    explore, self.choose_among(legal, deterministic=False), self._greedy(states, legal, False)
                )
                observations, rewards, terminated, truncated, info = env.step(actions)
                next_states = rules.state_from_observation(observations)
                next_legal = info["action_mask"].astype(bool)
                next_values = np.where(next_legal, self.q_values[next_states], -np.inf).max(axis=1)
                ended = terminated | truncated
                targets = rewards + self.gamma * np.where(ended, 0.0, next_values)
                self._update(states, actions, targets)
                steps += len(states)
                bar.update(len(states))
                if callback is not None:
                    callback(self, steps)
        self.num_timesteps += steps
        return self

    def _update(self, states: np.ndarray, actions: np.ndarray, targets: np.ndarray) -> None:
        pairs, inverse = np.unique(states * rules.NUM_CELLS + actions, return_inverse=True)
        mean_targets = np.bincount(inverse, weights=targets) / np.bincount(inverse)
        flat = self.q_values.reshape(-1)
        flat[pairs] += self.learning_rate * (mean_targets - flat[pairs])

    def save(self, path: str | Path) -> None:
        """Write the Q table and hyper-parameters to a safetensors file."""
        metadata = {
            "format": FORMAT,
            "hyperparameters": json.dumps(
                {
                    "learning_rate": self.learning_rate,
                    "gamma": self.gamma,
                    "exploration_initial_eps": self.exploration_initial_eps,
                    "exploration_final_eps": self.exploration_final_eps,
                    "exploration_fraction": self.exploration_fraction,
                }
            ),
            "num_timesteps": str(self.num_timesteps),
        }
        save_file({"q_values": self.q_values}, str(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path, seed: int | None = None) -> QLearningAgent:
        """Read an agent written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no Q-learning agent file at {path}")
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{path} is not a QLearningAgent file (format {metadata.get('format')!r})")
        agent = cls(**json.loads(metadata["hyperparameters"]), seed=seed)
        agent.q_values = load_file(str(path))["q_values"]
        if agent.q_values.shape != (rules.NUM_STATES, rules.NUM_CELLS):
            raise ValueError(f"{path}: Q table has shape {agent.q_values.shape}")
        agent.num_timesteps = int(metadata.get("num_timesteps", 0))
        return agent
