"""The ``callback`` argument of :meth:`TextPPO.learn <text_envs_agents.text_ppo.TextPPO.learn>`.

Two kinds, mixed freely in a list:

- a stable-baselines3 ``BaseCallback`` (``CallbackList``, ``CheckpointCallback``, ``StopTrainingOnMaxEpisodes``,
  your own subclass, ...), driven as SB3's on-policy algorithms drive it: ``init_callback(trainer)``, then
  ``on_training_start(locals, globals)``; per iteration ``on_rollout_start``, ``on_rollout_end`` once the
  batch is sampled, then the update, then ``on_step`` (``False`` stops training); and ``on_training_end``.
  One difference: SB3 calls ``on_step`` after every env step of a rollout; here the env steps (tokens)
  happen inside one batched sampling loop, so ``on_step`` comes once per iteration, after its update. So
  ``n_calls`` counts iterations (``CheckpointCallback(save_freq=k)`` saves every k iterations, a
  checkpoint :meth:`~text_envs_agents.text_ppo.TextPPO.load` resumes exactly), and stopping wastes no
  sampled batch. ``callback.locals`` holds ``batch`` (the
  :class:`~text_envs_agents.llm.rollout.RolloutBatch`), ``new_timesteps`` (its tokens), ``metrics`` (this
  iteration's) and ``history``; ``callback.num_timesteps`` is the trainer's count of generated tokens,
  ``callback.training_env`` the trainer's env and ``callback.logger`` its
  :class:`~text_envs_agents.text_ppo.logger.TrainingLogger` (what it records is written with the
  iteration's metrics).
- a plain callable ``(trainer, metrics) -> bool | None``, called after every update; ``False`` stops
  training after that update.

stable-baselines3 is never imported here: an object is recognised as a ``BaseCallback`` by its class
hierarchy, and whoever made one has imported SB3 already.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_SB3_MODULE = "stable_baselines3.common.callbacks"


def is_sb3_callback(value: Any) -> bool:
    """Whether ``value`` is an instance of stable-baselines3's ``BaseCallback`` (without importing SB3)."""
    return any(k.__module__ == _SB3_MODULE and k.__name__ == "BaseCallback" for k in type(value).__mro__)


class Callbacks:
    """All the callbacks of one ``learn`` call, behind one object per event."""

    def __init__(self, callback: Any, trainer: Any):
        items = [] if callback is None else list(callback) if isinstance(callback, (list, tuple)) else [callback]
        sb3 = [c for c in items if is_sb3_callback(c)]
        self.functions: list[Callable[[Any, dict[str, float]], bool | None]] = [
            c for c in items if not is_sb3_callback(c)
        ]
        for function in self.functions:
            if not callable(function):
                raise TypeError(
                    "callback takes stable-baselines3 BaseCallbacks and callables (trainer, metrics) -> bool | None, "
                    f"got {function!r}"
                )
        self.trainer = trainer
        self.sb3 = None
        if len(sb3) == 1:
            self.sb3 = sb3[0]
        elif sb3:
            from stable_baselines3.common.callbacks import CallbackList

            self.sb3 = CallbackList(sb3)
        if self.sb3 is not None:
            self.sb3.init_callback(trainer)

    def training_start(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        if self.sb3 is not None:
            self.sb3.on_training_start(locals_, globals_)

    def rollout_start(self) -> None:
        if self.sb3 is not None:
            self.sb3.on_rollout_start()

    def step(self, locals_: dict[str, Any]) -> bool:
        """SB3's ``on_step`` after an iteration's update; False: stop."""
        if self.sb3 is None:
            return True
        self.sb3.update_locals(locals_)
        return self.sb3.on_step() is not False

    def rollout_end(self, locals_: dict[str, Any]) -> None:
        if self.sb3 is not None:
            self.sb3.update_locals(locals_)
            self.sb3.on_rollout_end()

    def iteration_end(self, metrics: dict[str, float]) -> bool:
        """The plain callables after an update (all of them are called); False: stop."""
        results = [function(self.trainer, metrics) for function in self.functions]
        return all(result is not False for result in results)

    def training_end(self) -> None:
        if self.sb3 is not None:
            self.sb3.on_training_end()
