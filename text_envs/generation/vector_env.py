"""N text-generation episodes stepped as arrays, with one batched reward-model call per step."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from transformers import PreTrainedTokenizerBase

from text_envs.actions import check_discrete_actions
from text_envs.generation.task import GenerationTask
from text_envs.text_render import render_text_rgb


class TextGenerationVectorEnv(VectorEnv):
    """``num_envs`` episodes of :class:`~text_envs.generation.env.TextGenerationEnv` at once.

    ## Description
    Same observations, actions, rewards, episode ends and arguments as the single env. The
    contexts are rows of one ``int64`` array: a step shifts every row left by one token and writes
    the actions into the last column (array operations, no Python loop over envs); only episodes
    that end are decoded, and all completions that end in the same step are scored by **one**
    batched reward-model call. An agent that acts for all N envs with one batched LM forward is
    the fast path this env is built for. Made by ``gym.make_vec("text_envs/TextGeneration-v0",
    num_envs=N, vectorization_mode="vector_entry_point")``.

    ## Spaces
    ``single_action_space`` is ``Discrete(vocab_size)``; ``action_space`` is
    ``MultiDiscrete([vocab_size] * num_envs)``. Observations batch the single env's: a ``Dict`` of
    ``(num_envs, length)`` arrays, or a tuple of strings in text mode (``observation_space`` a ``Tuple``
    of the single env's :class:`~text_envs.generation.text_space.UnicodeText`).

    ## Rewards
    The single env's, all completions that end in a step scored in one call. The step is committed only
    after that call returns valid scores: when the reward model raises, the exception propagates and
    every env is as it was before the step (no episode ended, none restarted, no random draw taken), so
    calling ``step`` again with the same actions retries it; no finished completion is dropped, in any
    autoreset mode.

    ## Information
    Gymnasium's vector convention: for envs whose episode ended this step, ``info`` holds
    ``prompt``, ``completion``, ``completion_ids`` (object arrays) and ``score`` (float64), each
    with its ``_key`` mask. ``reset`` gives ``prompt`` for every env.

    ## Autoreset
    ``autoreset_mode`` ``NEXT_STEP`` (default): the step after an episode ends starts a new one for
    that env, ignoring its action and giving reward 0. ``SAME_STEP``: the new episode starts in the
    same step; the last observation is in ``info["final_obs"]`` and the episode's info in
    ``info["final_info"]``. ``DISABLED``: stepping a finished env raises ``RuntimeError``.

    Prompts are drawn with ``self.np_random`` (one ``integers`` draw per reset, for the resetting
    envs in ascending order), so ``num_envs=1`` reproduces the single env under the same seed.
    ``reset(options={"prompt_index": indices})`` sets them instead: ``num_envs`` indices into the env's
    prompt list (an evaluation that covers every prompt the same number of times), no draw taken; the
    episodes that later autoreset draw theirs as usual.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **task_arguments: Any,
    ):
        """``task_arguments`` are those of :class:`~text_envs.generation.env.TextGenerationEnv` (``tokenizer``,
        ``prompts``, ``reward_model``, ``max_new_tokens``, ...), with the same defaults."""
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.task = GenerationTask(**task_arguments)
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.single_observation_space = self.task.observation_space
        self.single_action_space = spaces.Discrete(self.task.vocab_size)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        length = self.task.sequence_length
        self._sequences = np.empty((num_envs, length), dtype=np.int64)
        self._sequence_tokens = np.zeros(num_envs, dtype=np.int64)
        self._new_tokens = np.zeros(num_envs, dtype=np.int64)
        self._positions = np.arange(length)
        self._encoder_ids = np.empty((num_envs, self.task.max_prompt_tokens), dtype=np.int64)
        self._encoder_mask = np.zeros((num_envs, self.task.max_prompt_tokens), dtype=np.int64)
        self._stop_ids = np.array(sorted(self.task.stop_token_ids), dtype=np.int64)
        self._prompt_index = np.zeros(num_envs, dtype=np.int64)
        self._done = np.ones(num_envs, dtype=bool)
        self._has_reset = False

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.task.tokenizer

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self._start_episodes(np.arange(self.num_envs), self._chosen_prompts(options))
        self._has_reset = True
        prompts = np.array([self.task.prompts[i] for i in self._prompt_index], dtype=object)
        return self._observations(), {"prompt": prompts, "_prompt": np.ones(self.num_envs, dtype=bool)}

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        if not self._has_reset:
            raise RuntimeError("step() called before reset()")
        tokens = check_discrete_actions(actions, self.num_envs, self.task.vocab_size, "token id")
        if self.autoreset_mode is AutoresetMode.DISABLED and self._done.any():
            raise RuntimeError(f"step() on finished envs {np.flatnonzero(self._done)}; call reset() first")
        restarting = self._done.copy()
        active = ~restarting
        # The step is built in new arrays and committed once the episodes that end in it are scored: a reward
        # model that raises leaves every env as it was, and the same step can be taken again. Rows that
        # restart are shifted too and rewritten below.
        sequences = np.concatenate([self._sequences[:, 1:], tokens[:, None]], axis=1)
        sequence_tokens = np.minimum(self._sequence_tokens + active, sequences.shape[1])
        new_tokens = self._new_tokens + active
        terminated = active & np.isin(tokens, self._stop_ids)
        truncated = (
            active & ~terminated & ((new_tokens >= self.task.max_new_tokens) | (sequence_tokens >= sequences.shape[1]))
        )
        ended = np.flatnonzero(terminated | truncated)
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        info = self._finish_episodes(ended, terminated, sequences, new_tokens, rewards) if ended.size else {}
        self._sequences, self._sequence_tokens, self._new_tokens = sequences, sequence_tokens, new_tokens
        self._done[ended] = True

        if self.autoreset_mode is AutoresetMode.NEXT_STEP:
            self._start_episodes(np.flatnonzero(restarting))
            return self._observations(), rewards, terminated, truncated, info
        observations = self._observations()
        if self.autoreset_mode is AutoresetMode.SAME_STEP and ended.size:
            final_obs = np.full(self.num_envs, None, dtype=object)
            for env_index in ended:
                final_obs[env_index] = _row(observations, env_index)
            finished = np.zeros(self.num_envs, dtype=bool)
            finished[ended] = True
            info = {"final_obs": final_obs, "_final_obs": finished, "final_info": info, "_final_info": finished.copy()}
            self._start_episodes(ended)
            observations = self._observations()
        return observations, rewards, terminated, truncated, info

    def render(self) -> tuple[str | np.ndarray, ...] | None:
        if self.render_mode == "ansi":
            return tuple(self._context_text(i) + "\n" for i in range(self.num_envs))
        if self.render_mode == "rgb_array":
            return tuple(render_text_rgb(self._context_text(i)) for i in range(self.num_envs))
        return None

    def _chosen_prompts(self, options: dict[str, Any] | None) -> np.ndarray | None:
        """The ``prompt_index`` reset option, checked: ``num_envs`` indices into the prompt list, or ``None``."""
        if not options or "prompt_index" not in options:
            return None
        indices = np.asarray(options["prompt_index"])
        count = len(self.task.prompts)
        if indices.shape != (self.num_envs,) or not np.issubdtype(indices.dtype, np.integer):
            raise ValueError(
                f"options['prompt_index'] must hold {self.num_envs} integer prompt indices (one per env), "
                f"got {options['prompt_index']!r}"
            )
        if indices.min() < 0 or indices.max() >= count:
            raise ValueError(f"options['prompt_index'] must index the {count} prompts (0..{count - 1}), got {indices}")
        return indices.astype(np.int64)

    def _start_episodes(self, envs: np.ndarray, prompt_index: np.ndarray | None = None) -> None:
        if envs.size == 0:
            return
        if prompt_index is None:
            prompt_index = self.np_random.integers(len(self.task.prompts), size=envs.size)
        self._prompt_index[envs] = prompt_index
        for env_index in envs:
            prompt_ids = self.task.prompt_ids[self._prompt_index[env_index]]
            self._sequence_tokens[env_index] = self.task.initial_sequence(prompt_ids, self._sequences[env_index])
            if self.task.architecture == "encoder_decoder":
                self._encoder_ids[env_index], self._encoder_mask[env_index] = self.task.encoder_input(prompt_ids)
        self._new_tokens[envs] = 0
        self._done[envs] = False

    def _finish_episodes(
        self,
        ended: np.ndarray,
        terminated: np.ndarray,
        sequences: np.ndarray,
        new_tokens: np.ndarray,
        rewards: np.ndarray,
    ) -> dict[str, Any]:
        """Score the episodes ``ended`` in this step's uncommitted ``sequences`` into ``rewards``; their info."""
        prompts, completions, completion_ids = [], [], []
        for env_index in ended:
            ids = sequences[env_index, len(self._positions) - new_tokens[env_index] :].copy()
            completion_ids.append(ids)
            completions.append(self.task.completion_text(ids, stopped=bool(terminated[env_index])))
            prompts.append(self.task.prompts[self._prompt_index[env_index]])
        scores = self.task.score(prompts, completions)
        rewards[ended] = scores
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[ended] = True
        info: dict[str, Any] = {}
        for key, values in (("prompt", prompts), ("completion", completions), ("completion_ids", completion_ids)):
            column = np.full(self.num_envs, None, dtype=object)
            for env_index, value in zip(ended, values, strict=True):
                column[env_index] = value
            info[key], info["_" + key] = column, mask.copy()
        info["score"], info["_score"] = rewards.copy(), mask.copy()
        return info

    def _context_text(self, env_index: int) -> str:
        prompt_ids = self.task.prompt_ids[self._prompt_index[env_index]]
        completion = self._sequences[env_index, len(self._positions) - self._new_tokens[env_index] :]
        return self.task.context_text(prompt_ids, completion)

    def _observations(self) -> Any:
        if self.task.observation_mode == "text":
            return tuple(self._context_text(i) for i in range(self.num_envs))
        mask = (self._positions >= len(self._positions) - self._sequence_tokens[:, None]).astype(np.int64)
        if self.task.architecture == "causal":
            return {"input_ids": self._sequences.copy(), "attention_mask": mask}
        return {
            "input_ids": self._encoder_ids.copy(),
            "attention_mask": self._encoder_mask.copy(),
            "decoder_input_ids": self._sequences.copy(),
            "decoder_attention_mask": mask,
        }


def _row(observations: Any, index: int) -> Any:
    """One env's observation out of a batch."""
    if isinstance(observations, dict):
        return {key: value[index].copy() for key, value in observations.items()}
    return observations[index]
