"""RLHF with stock stable-baselines3 PPO or A2C: an LM policy, KL-penalised envs and the log-probs between them.

The recipe (what ``text-envs-train --algo sb3-ppo|sb3-a2c`` runs):

1. ``n_envs`` :class:`~text_envs.TextGenerationEnv` envs, each wrapped in :class:`~text_envs.shaping.KLPenalty`
   against a frozen copy of the initial LM (the reference), in an SB3 ``DummyVecEnv``
   (:func:`make_rlhf_vec_env`).
2. ``PPO`` or ``A2C`` with :class:`~text_envs_agents.sb3.policy.LMActorCriticPolicy` (the LM's next-token
   logits are the actions, a value head on its last hidden state is the critic).
3. ``policy.logprob_callback = send_logprobs_to(vec_env)``: the policy hands each env the exact
   ``log π(a_t|s_t)`` of the token it sampled before the env steps, so the per-token KL penalty
   ``-β·kl_t`` is the policy's KL (nats) and not the ``cross_entropy`` stand-in stock SB3 would get.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the settings classes stay light: a command line's --help imports them, not torch
    import torch
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv


@dataclass
class SB3PPOSettings:
    """stable-baselines3 ``PPO`` keyword arguments of the RLHF recipe (tokens are env steps)."""

    learning_rate: float = 3e-4
    n_steps: int = 64
    """env steps (tokens) per env per rollout; a rollout is ``n_envs × n_steps`` tokens"""
    batch_size: int = 128
    """tokens per minibatch"""
    n_epochs: int = 4
    """passes over each rollout"""
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5


@dataclass
class SB3A2CSettings:
    """stable-baselines3 ``A2C`` keyword arguments of the RLHF recipe (tokens are env steps)."""

    learning_rate: float = 3e-4
    n_steps: int = 16
    """env steps (tokens) per env per update"""
    gamma: float = 0.99
    gae_lambda: float = 1.0
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5


SETTINGS = {"ppo": SB3PPOSettings, "a2c": SB3A2CSettings}


def make_rlhf_vec_env(
    env_kwargs: Mapping[str, Any],
    *,
    reference_model: torch.nn.Module,
    beta: float,
    n_envs: int = 8,
    seed: int = 0,
    shaping: str = "",
) -> VecEnv:
    """``n_envs`` ``KLPenalty(TextGenerationEnv(**env_kwargs), reference_model, beta)`` envs in a ``DummyVecEnv``.

    ``beta`` is in reward units per nat; ``reference_model`` is shared by the envs and must not train. The
    KL penalty runs on ``reference_model``'s device: put it where the policy is (what :func:`train_sb3_rlhf`
    does with its ``device``).
    ``shaping`` (a :func:`~text_envs.shaping.parse_shaping` spec such as ``"LengthTerm(coef=0.01)"``) adds
    further pieces above the KL penalty, each env its own, in a :class:`~text_envs.shaping.ShapingWrapper`
    each: the pieces TextPPO takes as ``shaping=``, giving the same rewards for stateless pieces. A stateful
    piece keeps its state per env here (``ReturnStdScaling``'s return statistics), where TextPPO keeps one
    for the batch.
    """
    from stable_baselines3.common.env_util import make_vec_env

    from text_envs.generation.env import TextGenerationEnv
    from text_envs.shaping import KLPenalty, ShapingWrapper, parse_shaping

    parse_shaping(shaping)  # a bad spec fails here, before the envs are built

    def make_env():
        env = KLPenalty(TextGenerationEnv(**env_kwargs), reference_model=reference_model, beta=beta)
        for piece in parse_shaping(shaping):
            env = ShapingWrapper(env, piece)
        return env

    return make_vec_env(make_env, n_envs=n_envs, seed=seed)


def train_sb3_rlhf(
    algo: Literal["ppo", "a2c"],
    *,
    env_kwargs: Mapping[str, Any],
    model: str | Path | None = None,
    beta: float = 0.1,
    shaping: str = "",
    timesteps: int = 20_000,
    seed: int = 0,
    n_envs: int = 8,
    settings: SB3PPOSettings | SB3A2CSettings | None = None,
    lora: Mapping[str, Any] | None = None,
    tensorboard_log: str | Path | None = None,
    progress_bar: bool = False,
    callback: Callable | None = None,
    device: str = "auto",
) -> tuple[BaseAlgorithm, torch.nn.Module]:
    """Fine-tune a causal LM with stock SB3 ``PPO`` or ``A2C`` against ``env_kwargs``'s reward model, KL-penalised.

    Args:
        algo: ``"ppo"`` or ``"a2c"``.
        env_kwargs: keyword arguments of :class:`~text_envs.TextGenerationEnv` (``reward_model``,
            ``prompts``, ``max_new_tokens``, ...). ``tokenizer`` defaults to ``model``, which must share it.
        model: registered name (:mod:`text_envs.models`), Hugging Face causal LM name or local folder;
            ``None`` the embedded default LM. It is loaded twice: the policy, and the frozen reference
            of the KL penalty.
        beta: KL coefficient β (reward units per nat) of every token's ``-β·kl_t``.
        shaping: further shaping pieces above the KL penalty, a :func:`~text_envs.shaping.parse_shaping` spec.
        timesteps: env steps (generated tokens) to train for, over all envs.
        seed: seeds the envs (prompt draws) and the algorithm.
        n_envs: envs stepped together (the policy samples a batch of ``n_envs`` tokens per step).
        settings: the algorithm's keyword arguments (default: :class:`SB3PPOSettings` or
            :class:`SB3A2CSettings`, the recipe's).
        lora: ``peft.LoraConfig`` keyword arguments: train LoRA adapters only (needs ``peft``).
        tensorboard_log: SB3's TensorBoard folder, or ``None``.
        progress_bar: SB3's progress bar (needs ``tqdm`` and ``rich``).
        callback: an SB3 callback passed to ``learn``.
        device: SB3's ``device`` (``"auto"``: CUDA when present, ``"cpu"``, ``"cuda"``...): where the policy
            and the KL penalty's reference model run. The env's reward model is placed by whoever built it
            (``env_kwargs["reward_model"]``).

    Returns:
        The trained SB3 model (save it with ``model.save(path)``) and its LM, a Hugging Face model.
    """
    from stable_baselines3 import A2C, PPO

    from text_envs.lm import load_causal_lm, resolve_device
    from text_envs_agents.sb3.policy import LMActorCriticPolicy, send_logprobs_to

    if algo not in SETTINGS:
        raise ValueError(f"algo must be one of {sorted(SETTINGS)}, got {algo!r}")
    settings = SETTINGS[algo]() if settings is None else settings
    if not isinstance(settings, SETTINGS[algo]):
        raise TypeError(f"{algo} takes {SETTINGS[algo].__name__}, got {type(settings).__name__}")
    model = None if model is None or str(model) == "" else str(model)
    env_kwargs = {"tokenizer": model, **env_kwargs}
    device = resolve_device(device)
    reference = load_causal_lm(model).to(device).eval().requires_grad_(False)
    vec_env = make_rlhf_vec_env(
        env_kwargs, reference_model=reference, beta=beta, n_envs=n_envs, seed=seed, shaping=shaping
    )
    algorithm = (PPO if algo == "ppo" else A2C)(
        LMActorCriticPolicy,
        vec_env,
        seed=seed,
        device=device,
        tensorboard_log=None if tensorboard_log is None else str(tensorboard_log),
        policy_kwargs=dict(model_name_or_path=model, lora=None if lora is None else dict(lora)),
        **asdict(settings),
    )
    algorithm.policy.logprob_callback = send_logprobs_to(vec_env)
    algorithm.learn(total_timesteps=timesteps, progress_bar=progress_bar, callback=callback)
    return algorithm, algorithm.policy.lm.model
