"""Warm start, then RL, for a causal LM on TicTacToeText-v0, each stage evaluated: ``text-envs-train-tictactoe-lm``.

1. **Zero-shot** (optional): the model as it comes.
2. **Warm start**: :func:`~text_envs_agents.tictactoe_lm.warm_start.imitate` on
   :func:`~text_envs_agents.tictactoe_lm.warm_start.minimax_demonstrations` (the minimax agent's moves
   through the env's own prompts); with ``lora_r`` the adapters train and are then merged into the
   weights, so the RL stage's reference model (its KL anchor) is the warm-started model.
3. **RL** on whole games against the training opponent, the reward the game's outcome:
   ``algo="textppo"``: multi-turn :class:`~text_envs_agents.TextPPO` (``context="game"``: KV cache across
   turns, only the agent's tokens trained); ``algo="sb3-ppo"``: stable-baselines3's PPO with
   :class:`~text_envs_agents.LMActorCriticPolicy`, stock (either context).

After each stage the LM plays ``eval_games`` games against each evaluation opponent, sampled at
temperature 1 (its full next-token distribution, nothing masked) and greedy. Under ``output_dir``:
``warm_start/`` and ``rl/`` (``from_pretrained`` folders with the tokenizer), ``tensorboard/``
(``warm_start/loss``, the RL algorithm's own curves), ``results.json`` (written atomically after each
stage) and ``results.md`` (the before/after table).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from text_envs.durable import write_atomic
from text_envs_agents.text_ppo.config import MIXED_PRECISION, MixedPrecision

Stage = Literal["zero-shot", "warm start", "warm start + RL"]


@dataclass
class TicTacToeLMConfig:
    """What :func:`train_tictactoe_lm` runs; torch-free, so a command line reads it without loading torch."""

    model: str | None = None
    """the causal LM: a registered name (``smollm2-135m-instruct``), Hub name or folder; None the embedded LM"""
    prompt_format: Literal["plain", "chat"] = "plain"
    context: Literal["game", "turn"] = "turn"
    """``game``: the whole game stays in the context (needed by textppo); ``turn``: each turn's prompt alone
    (the embedded LM's 128 positions hold one turn, not a game)"""
    algo: Literal["textppo", "sb3-ppo"] = "sb3-ppo"
    max_move_tokens: int = 4
    """tokens a turn may take before a turn without a digit is illegal (the env's argument)"""
    lora_r: int = 0
    """LoRA rank of both stages (0: every weight trains)"""
    mixed_precision: MixedPrecision = "no"
    """``"bf16"``: the warm start's and textppo's forwards under bf16 autocast over float32 weights
    (:attr:`~text_envs_agents.TextPPOConfig.mixed_precision`); sb3-ppo's policy has no such mode, so an
    sb3-ppo RL stage refuses it; the evaluations run in the weights' dtype either way"""
    warm_start_games: int = 2000
    """minimax games (vs the training opponent, alternating sides) to imitate; 0 skips the warm start"""
    warm_start_deterministic: bool = False
    """the minimax agent breaks ties among its optimal moves by the lowest cell instead of at random: one
    answer per position, imitated to a policy whose sampled moves are close to its greedy ones"""
    warm_start_distinct: bool = False
    """imitate each different game (or turn) of the ``warm_start_games`` once, each weighed alike: with the
    deterministic teacher they repeat, and 20,000 games against random hold all 642
    it can play (:func:`~text_envs_agents.tictactoe_lm.warm_start.minimax_demonstrations`)"""
    warm_start_epochs: int = 2
    warm_start_learning_rate: float = 1e-3
    warm_start_minibatch: int = 32
    rl_games: int = 2000
    """RL training games (textppo: iterations of n_envs games; sb3-ppo: until this many games ended)"""
    n_envs: int = 16
    learning_rate: float = 1e-4
    kl_coef: float = 0.02
    """textppo's KL penalty to the warm-started model (sb3-ppo has none)"""
    ppo_epochs: int = 2
    """textppo's passes over each batch of games"""
    ppo_minibatch: int = 8
    """textppo's games per minibatch"""
    sb3_n_steps: int = 32
    sb3_batch_size: int = 128
    sb3_n_epochs: int = 4
    sb3_gamma: float = 1.0
    """sb3-ppo's discount: 1 scores each move by the game's outcome; below 1 a move's own legality weighs more
    than the later turns, which an early policy still loses (an illegal move ends the game at -1 at once)"""
    opponent: Literal["random", "minimax"] = "random"
    opponent_epsilon: float = 0.0
    eval_games: int = 400
    eval_opponents: tuple[str, ...] = ("random", "minimax")
    eval_greedy: bool = True
    """also evaluate greedy decoding (the targets are on sampled play)"""
    eval_zero_shot: bool = True
    seed: int = 0


@dataclass
class StageResult:
    stage: str
    seconds: float
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    """``"{opponent}, {sampled|greedy}"`` -> GameResults as a dict"""


def train_tictactoe_lm(config: TicTacToeLMConfig, output_dir: str | Path) -> list[StageResult]:
    """Run the stages of the module docstring; returns each stage's training seconds and evaluations."""
    import torch

    from text_envs.lm import load_causal_lm, resolve_device
    from text_envs_agents.tictactoe_lm.warm_start import imitate, minimax_demonstrations

    _check(config)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    env_kwargs = lm_env_kwargs(config)
    train_kwargs = {**env_kwargs, "opponent": config.opponent, "opponent_epsilon": config.opponent_epsilon}
    writer = _summary_writer(output / "tensorboard")
    torch.manual_seed(config.seed)
    device = resolve_device("auto")
    model = load_causal_lm(config.model).to(device)
    stages: list[StageResult] = []

    def finish(stage: str, seconds: float) -> None:
        stages.append(StageResult(stage, seconds, _evaluate(model, config, env_kwargs)))
        record = {"config": asdict(config), "stages": [asdict(s) for s in stages]}
        write_atomic(output / "results.json", json.dumps(record, indent=2) + "\n")
        write_atomic(output / "results.md", results_table(stages) + "\n")
        print(f"\n{results_table(stages[-1:])}", flush=True)

    if config.eval_zero_shot:
        finish("zero-shot", 0.0)
    if config.warm_start_games:
        start = time.perf_counter()
        demonstrations = minimax_demonstrations(
            config.warm_start_games,
            config.seed,
            config.warm_start_deterministic,
            config.warm_start_distinct,
            **train_kwargs,
        )
        if config.lora_r:
            from text_envs_agents.llm.model import with_lora

            model = with_lora(model, _lora(config))
        losses = imitate(
            model,
            demonstrations,
            config.warm_start_epochs,
            config.warm_start_learning_rate,
            config.warm_start_minibatch,
            config.seed,
            on_minibatch=lambda step, loss: writer.add_scalar("warm_start/loss", loss, step),
            mixed_precision=config.mixed_precision,
        )
        print(f"warm start: {len(demonstrations.prompts)} rows, loss per epoch {[round(x, 3) for x in losses]}")
        if config.lora_r:
            model = model.merge_and_unload()
        _save(model, output / "warm_start", config.model)
        finish("warm start", time.perf_counter() - start)
    start = time.perf_counter()
    if config.rl_games:
        if config.algo == "textppo":
            model = _textppo(model, config, train_kwargs, output)
        else:
            start_from = str(output / "warm_start") if config.warm_start_games else config.model
            model = _sb3_ppo(start_from, config, train_kwargs, output)
        _save(model, output / "rl", config.model)
        finish("warm start + RL", time.perf_counter() - start)
    writer.close()
    return stages


def lm_env_kwargs(config: TicTacToeLMConfig) -> dict[str, Any]:
    """The TicTacToeText-v0 arguments of the LM's own prompts (tokenizer, format, context, move length), which every
    stage's games and every evaluation of the trained LM use."""
    return {
        "tokenizer": config.model,
        "prompt_format": config.prompt_format,
        "context": config.context,
        "max_move_tokens": config.max_move_tokens,
    }


def _check(config: TicTacToeLMConfig) -> None:
    if config.algo == "textppo" and config.context != "game":
        raise ValueError("algo='textppo' trains on whole games: set context='game'")
    if config.context == "game" and config.model is None:
        raise ValueError("context='game': the embedded LM's 128 positions hold one turn, not a game; set model")
    if config.mixed_precision not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {config.mixed_precision!r}")
    if config.mixed_precision == "bf16" and config.algo == "sb3-ppo" and config.rl_games:
        raise ValueError("mixed_precision='bf16' is for the warm start and textppo: set algo='textppo' or rl_games=0")
    for name in ("warm_start_games", "rl_games", "lora_r"):
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must be non-negative, got {getattr(config, name)}")
    if config.eval_opponents and config.eval_games < 2:
        raise ValueError(f"eval_games must be at least 2 (half as each side), got {config.eval_games}")


def _lora(config: TicTacToeLMConfig) -> dict[str, Any]:
    return {"r": config.lora_r, "lora_alpha": 2 * config.lora_r, "lora_dropout": 0.0, "target_modules": "all-linear"}


def _evaluate(model: Any, config: TicTacToeLMConfig, env_kwargs: dict[str, Any]) -> dict[str, dict[str, float]]:
    from text_envs_agents.tictactoe_lm.evaluation import evaluate_lm_tictactoe

    results = {}
    for opponent in config.eval_opponents:
        for greedy in (False, True) if config.eval_greedy else (False,):
            seed = config.seed + 10_000  # games no training stage saw
            outcome = evaluate_lm_tictactoe(model, opponent, config.eval_games, seed, greedy, **env_kwargs)
            results[f"{opponent}, {'greedy' if greedy else 'sampled'}"] = outcome.as_dict()
    return results


def results_table(stages: list[StageResult]) -> str:
    """The before/after table: a row per stage, opponent and decoding."""
    lines = [
        "| stage | opponent, decoding | games | win | draw | loss | illegal | mean reward | stage seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for stage in stages:
        for name, r in stage.results.items():
            lines.append(
                f"| {stage.stage} | {name} | {r['games']} | {r['win']:.1%} | {r['draw']:.1%} | {r['loss']:.1%} "
                f"| {r['illegal']:.1%} | {r['mean_reward']:+.3f} | {stage.seconds:.0f} |"
            )
    return "\n".join(lines)


def _save(model: Any, folder: Path, tokenizer: str | None) -> None:
    from text_envs.lm import load_tokenizer

    model.save_pretrained(str(folder))
    load_tokenizer(tokenizer).save_pretrained(str(folder))


def _summary_writer(folder: Path) -> Any:
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(folder))


def _textppo(model: Any, config: TicTacToeLMConfig, train_kwargs: dict[str, Any], output: Path) -> Any:
    """Multi-turn TextPPO on whole games; returns the trained LM (LoRA merged)."""
    from text_envs.tictactoe.text_env import TicTacToeTextVectorEnv
    from text_envs_agents.text_ppo import TextPPO, TextPPOConfig

    env = TicTacToeTextVectorEnv(config.n_envs, agent_first=None, **train_kwargs)
    ppo_config = TextPPOConfig(
        learning_rate=config.learning_rate,
        kl_coef=config.kl_coef,
        ppo_epochs=config.ppo_epochs,
        minibatch_size=min(config.n_envs, config.ppo_minibatch),
        lora=_lora(config) if config.lora_r else None,
        mixed_precision=config.mixed_precision,
        seed=config.seed,
    )
    trainer = TextPPO(env, model, ppo_config, tensorboard_log=output / "tensorboard", sample_log_interval=None)
    trainer.learn(iterations=math.ceil(config.rl_games / config.n_envs), progress_bar=True)
    trainer.close()
    env.close()
    trained = trainer.policy.model
    return trained.merge_and_unload() if config.lora_r else trained


def _sb3_ppo(start_from: str | None, config: TicTacToeLMConfig, train_kwargs: dict[str, Any], output: Path) -> Any:
    """Stock stable-baselines3 PPO with LMActorCriticPolicy loaded from ``start_from`` (the warm-started folder, or
    the configured model); returns the trained LM."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    from text_envs.tictactoe.text_env import TicTacToeTextEnv
    from text_envs_agents.sb3 import LMActorCriticPolicy

    env = make_vec_env(
        TicTacToeTextEnv, n_envs=config.n_envs, seed=config.seed, env_kwargs={**train_kwargs, "agent_first": None}
    )

    class StopAfterGames(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.games = 0

        def _on_step(self) -> bool:
            self.games += int(sum(self.locals["dones"]))
            return self.games < config.rl_games

    lora = _lora(config) if config.lora_r else None
    model = PPO(
        LMActorCriticPolicy,
        env,
        learning_rate=config.learning_rate,
        n_steps=config.sb3_n_steps,
        batch_size=config.sb3_batch_size,
        n_epochs=config.sb3_n_epochs,
        gamma=config.sb3_gamma,
        ent_coef=0.0,
        policy_kwargs={"model_name_or_path": start_from, "lora": lora},
        tensorboard_log=str(output / "tensorboard"),
        seed=config.seed,
        verbose=0,
    )
    # At most five turns of max_move_tokens tokens a game: the callback stops at rl_games games, long before.
    most_steps = config.rl_games * 5 * config.max_move_tokens
    model.learn(total_timesteps=most_steps, callback=StopAfterGames(), progress_bar=True)
    model.save(output / "rl_sb3_ppo.zip")
    env.close()
    trained = model.policy.lm.model
    return trained.merge_and_unload() if config.lora_r else trained
