"""The benchmark's envs and agents: what each env measures, and how each agent is built, trained and evaluated.

An agent fits the envs it has a runner for; a runner takes a :class:`CellContext` (seed, episodes,
training budget) and returns a :class:`CellResult` (the env's metrics and, for a trained agent, a
learning curve). Adding a built-in agent is adding an :class:`AgentInfo` to :data:`AGENTS`; users add
theirs with :func:`~text_envs_agents.benchmark.custom.register_agent` and
:func:`~text_envs_agents.benchmark.custom.register_env`, which add to the same two dicts.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from text_envs.agent_protocol import Agent
from text_envs.tictactoe.evaluation import GameResults, evaluate_tictactoe, evaluate_tictactoe_text
from text_envs_agents.minimax_agent import MinimaxAgent
from text_envs_agents.random_agent import RandomAgent
from text_envs_agents.sb3.rlhf import SB3A2CSettings, SB3PPOSettings
from text_envs_agents.text_tictactoe_agent import TextTicTacToeAgent
from text_envs_agents.tictactoe_training import train_tictactoe_agent

if TYPE_CHECKING:  # torch and the judges load with the first text cell
    import torch
    from torch import nn

    from text_envs.judges import PerplexityJudge
    from text_envs_agents.llm.rollout import RolloutBatch
    from text_envs_agents.tictactoe_lm.training import TicTacToeLMConfig

TICTACTOE = "text_envs/TicTacToe-v0"
TEXT_GENERATION = "text_envs/TextGeneration-v0"
TICTACTOE_TEXT = "text_envs/TicTacToeText-v0"

EVAL_SEED_OFFSET = 10_000
"""Evaluation games and prompts use seed ``EVAL_SEED_OFFSET + seed``: a stream apart from training's."""
CURVE_POINTS = 20
"""A trained Tic-Tac-Toe agent is evaluated this many times during training (and once before it)."""
CURVE_GAMES = 200
"""Games against the random opponent per learning-curve point."""
TEXT_BATCH_SIZE = 32
"""Episodes per TextPPO iteration."""
MAX_NEW_TOKENS = 24
"""Completion length limit of the TextGeneration-v0 cells (tokens), as in text-envs-train."""
TEXT_EVAL_ENVS = 64
"""Held-out completions sampled together in a TextGeneration-v0 evaluation (the rest follow in rounds)."""
KL_COEF = 0.1
"""β of TextPPO and of the SB3 agents' ``KLPenalty`` in the benchmark (reward units per nat)."""
SB3_N_ENVS = 8
"""Envs the SB3 agents step together (text-envs-train's ``--n-envs``)."""
SB3_PPO_SETTINGS = SB3PPOSettings(learning_rate=3e-5)
"""sb3-ppo's settings: text-envs-train's SB3 PPO recipe but the learning rate. Tuned on seed 0 (the untrained LM
scores -1.90 there): at 4,096 tokens 1e-5 reached -0.60 at 0.1 nats of KL, 3e-5 2.35 at 4.2 nats, 1e-4 diverged (KL
104 nats, score -6.6); at 8,192, 1e-5 reached 1.06 at 1.5 nats (perplexity 59, the reference's 50), 3e-5 1.80 at 8.6
nats (perplexity 149): the higher score was kept. The recipe's default is 3e-4."""
SB3_A2C_SETTINGS = SB3A2CSettings(learning_rate=5e-5)
"""sb3-a2c's settings: text-envs-train's SB3 A2C recipe but the learning rate. Tuned as sb3-ppo's: at 4,096 tokens 1e-5
did not move the policy (-1.84), 3e-5 reached -0.68, 1e-4 2.56 at 3.6 nats of KL, 3e-4 3.50 at 12.7 nats with
completions cut to 6 tokens; at 8,192, 1e-4 reached 2.92 and 3.11 on seeds 0 and 1 but diverged on seed 2 (-7.53 at
134 nats), where 5e-5 reached 0.90 at 5.2 nats."""


Evaluation = Callable[[Agent, int, int], dict[str, float]]
"""``evaluate(agent, episodes, seed)``: an env's metrics (``score`` and its columns) for any agent with ``predict``."""


@dataclass(frozen=True)
class Column:
    """A metric of an env's cells: its key in the results, its table heading, and the decimals shown."""

    key: str
    label: str
    decimals: int
    judge_field: str = ""
    """The row field naming what measured this metric (a judge LM), added to the heading; empty: none."""


@dataclass(frozen=True)
class EnvInfo:
    """What the benchmark measures on one env; ``score`` is the primary metric, ``columns`` the others."""

    env_id: str
    default_episodes: int
    score: Column
    columns: tuple[Column, ...]
    small_models: bool
    """Only small MLPs and tables run here: torch gets one thread (faster than two for them)."""
    curve_label: str = ""
    """What a learning curve shows on this env (its y axis)..."""
    curve_steps: str = ""
    """...against which env steps (its x axis)."""
    evaluate: Evaluation | None = None
    """How an agent with ``predict`` is scored here; None: only the built-in agents run on this env."""
    make_env: Callable[[], Any] | None = None
    """The env a user's agent factory is given (to read the spaces from, or to train on)."""
    fits_by_default: bool = False
    """Whether a user's agent registered without ``envs`` fits this env."""
    curve_episodes: int = CURVE_GAMES
    """Episodes per learning-curve point of a user's stable-baselines3 agent."""

    @property
    def name(self) -> str:
        """The id without the ``text_envs/`` namespace, as the spec and the table write it."""
        return self.env_id.removeprefix("text_envs/")


@dataclass(frozen=True)
class CellContext:
    """What one cell's runner is given: the seed, the evaluation episodes, the training budget (None: untrained),
    for an agent that :attr:`~AgentInfo.uses_model` its LM (a registered name, Hub name or folder; None: the
    embedded LM), and the LM that judges the fluency of text cells (None: no perplexity)."""

    seed: int
    episodes: int
    budget: int | None
    model: str | None = None
    judge_lm: str | None = None

    @property
    def eval_seed(self) -> int:
        return EVAL_SEED_OFFSET + self.seed


@dataclass
class CellResult:
    """One cell's outcome: ``metrics`` holds ``score`` and the env's columns (numbers, and the names of the judges
    of :attr:`Column.judge_field`); ``curve`` is ``(env steps, score)``."""

    metrics: dict[str, float | str]
    train_seconds: float = 0.0
    curve: list[tuple[int, float]] = field(default_factory=list)


Runner = Callable[[CellContext], CellResult]


@dataclass(frozen=True)
class AgentInfo:
    """A benchmark agent: a runner per env it fits and, for a trained agent, its default training budget."""

    name: str
    description: str
    runners: Mapping[str, Runner]
    default_budget: int | None = None
    budget_unit: str = ""
    uses_model: bool = False
    """Whether the agent runs the spec's ``model`` (its cells then differ by model)."""
    extra: tuple[str, str] | None = None
    """``(extra, module)``: the package extra the agent needs and a top-level module it installs, e.g.
    ``("rllib", "ray")``; None: the core dependencies suffice."""
    registered_model: str | None = None
    """A registered model (:mod:`text_envs.models`) the agent always runs, whatever the spec's ``model``."""

    @property
    def trained(self) -> bool:
        return self.default_budget is not None

    @property
    def missing(self) -> str:
        """What the agent needs and this installation lacks (its extra, its registered model's wheel), with the
        command that fetches it; ``""``: nothing."""
        if self.extra is not None and importlib.util.find_spec(self.extra[1]) is None:
            return f'the {self.extra[0]} extra (pip install "text_envs[{self.extra[0]}]")'
        if self.registered_model is not None:
            from text_envs.models import missing_model

            return missing_model(self.registered_model)
        return ""

    def fits(self, env_id: str) -> bool:
        return env_id in self.runners


# --------------------------------------------------------------------------------------------- Tic-Tac-Toe
def _game_metrics(results: GameResults) -> dict[str, float]:
    return {
        "score": results.mean_reward,
        "win": results.win,
        "draw": results.draw,
        "loss": results.loss,
        "illegal": results.illegal,
    }


def _evaluate_tictactoe(agent: Agent, episodes: int, seed: int) -> dict[str, float]:
    return _game_metrics(evaluate_tictactoe(agent, "random", episodes, seed=seed))


def _evaluate_tictactoe_text(agent: Agent, episodes: int, seed: int) -> dict[str, float]:
    return _game_metrics(evaluate_tictactoe_text(agent, "random", episodes, seed))


def _tictactoe_training_env():
    """TicTacToe-v0 as the trained agents meet it: the settings of the packaged RL Zoo file (minimax, ε = 0.5)."""
    import gymnasium as gym

    from text_envs_agents.hyperparams import zoo_hyperparams

    return gym.make(TICTACTOE, **zoo_hyperparams("ppo_mask", TICTACTOE)["env_kwargs"])


def _tictactoe_text_env():
    import gymnasium as gym

    return gym.make(TICTACTOE_TEXT, opponent="random", agent_first=None)


def _untrained_tictactoe(make_agent: Callable[[int], Agent]) -> Runner:
    def run(context: CellContext) -> CellResult:
        return CellResult(_evaluate_tictactoe(make_agent(context.seed), context.episodes, context.eval_seed))

    return run


def _trained_tictactoe(algo: str) -> Runner:
    """Train with text-envs-train-tictactoe's settings; the curve is the score over CURVE_GAMES games."""

    def run(context: CellContext) -> CellResult:
        assert context.budget is not None
        curve: list[tuple[int, float]] = []

        def record(agent: Agent, moves: int) -> None:
            score = evaluate_tictactoe(agent, "random", CURVE_GAMES, seed=context.eval_seed).mean_reward
            curve.append((moves, score))

        start = time.perf_counter()
        agent = train_tictactoe_agent(
            algo,
            context.budget,
            seed=context.seed,
            callback=record,
            callback_interval=max(1, context.budget // CURVE_POINTS),
        )
        train_seconds = time.perf_counter() - start
        return CellResult(_evaluate_tictactoe(agent, context.episodes, context.eval_seed), train_seconds, curve)

    return run


def _through_text(make_agent: Callable[[int], Agent]) -> Runner:
    def run(context: CellContext) -> CellResult:
        agent = TextTicTacToeAgent(make_agent(context.seed))
        return CellResult(_evaluate_tictactoe_text(agent, context.episodes, context.eval_seed))

    return run


def _default_lm_tictactoe_text(context: CellContext) -> CellResult:
    """The cell's LM as the stable-baselines3 policy that PPO would train (greedy), zero-shot, on its own tokenizer."""
    from text_envs.tictactoe.text_env import TicTacToeTextEnv
    from text_envs_agents.sb3.policy import LMActorCriticPolicy

    spaces_env = TicTacToeTextEnv(tokenizer=context.model)
    policy = LMActorCriticPolicy(
        spaces_env.observation_space,
        spaces_env.action_space,
        lr_schedule=lambda _: 0.0,
        model_name_or_path=context.model,
    )
    games = evaluate_tictactoe_text(policy, "random", context.episodes, context.eval_seed, tokenizer=context.model)
    return CellResult(_game_metrics(games))


SMOLLM2 = "smollm2-135m-instruct"
"""The real instruction-tuned LM of smollm2-warm-start-textppo (:mod:`text_envs.models`)."""


def _lm_tictactoe_text(make_config: Callable[[CellContext], TicTacToeLMConfig]) -> Runner:
    """``text-envs-train-tictactoe-lm`` with the config ``make_config`` builds for the cell (its stages not
    evaluated), then the trained LM scored on ``episodes`` games against random, sampled at temperature 1, through
    its own prompts; the row records the training's ``mixed_precision``."""

    def run(context: CellContext) -> CellResult:
        import tempfile

        from text_envs.lm import load_causal_lm, resolve_device
        from text_envs_agents.tictactoe_lm.evaluation import evaluate_lm_tictactoe
        from text_envs_agents.tictactoe_lm.training import lm_env_kwargs, train_tictactoe_lm

        config = make_config(context)
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            train_tictactoe_lm(config, folder)
            train_seconds = time.perf_counter() - start
            model = load_causal_lm(Path(folder) / "rl").to(resolve_device("auto"))
        games = evaluate_lm_tictactoe(model, "random", context.episodes, context.eval_seed, **lm_env_kwargs(config))
        return CellResult({**_game_metrics(games), "mixed_precision": config.mixed_precision}, train_seconds)

    return run


def _embedded_warm_start_sb3_ppo(context: CellContext) -> TicTacToeLMConfig:
    """The embedded LM: ``budget`` games of minimax imitation (4 epochs), then ``budget`` games of stock SB3 PPO vs
    random (``context="turn"``: its 128 positions hold one turn), the command's other defaults."""
    from text_envs_agents.tictactoe_lm.training import TicTacToeLMConfig

    assert context.budget is not None
    return TicTacToeLMConfig(
        warm_start_games=context.budget,
        warm_start_epochs=4,
        rl_games=context.budget,
        eval_opponents=(),
        eval_zero_shot=False,
        seed=context.seed,
    )


def _smollm2_warm_start_textppo(context: CellContext) -> TicTacToeLMConfig:
    """SmolLM2 by the recipe of the README's "An LLM that learns Tic-Tac-Toe": chat prompts, whole games in the
    context, LoRA r 16, bf16 autocast where the device computes in bf16 natively (float32 elsewhere); ``budget`` games
    of the deterministic minimax teacher (one epoch, minibatch 8), then ``budget // 4`` games (at least 2) of
    multi-turn TextPPO vs random (learning rate 2e-4), in iterations of at most 16 games, the last rounded up to a
    whole iteration."""
    from text_envs.lm import resolve_device
    from text_envs_agents.llm.model import native_bf16
    from text_envs_agents.tictactoe_lm.training import TicTacToeLMConfig

    assert context.budget is not None
    rl_games = max(2, context.budget // 4)
    return TicTacToeLMConfig(
        model=SMOLLM2,
        prompt_format="chat",
        context="game",
        algo="textppo",
        lora_r=16,
        mixed_precision="bf16" if native_bf16(resolve_device("auto")) else "no",
        warm_start_games=context.budget,
        warm_start_deterministic=True,
        warm_start_epochs=1,
        warm_start_minibatch=8,
        rl_games=rl_games,
        n_envs=min(16, rl_games),
        learning_rate=2e-4,
        eval_opponents=(),
        eval_zero_shot=False,
        seed=context.seed,
    )


# ----------------------------------------------------------------------------------------- text generation
TEXT_JUDGED = ("vader_mean", "perplexity", "broken_share", "distinct_2", "words_mean")
"""The figures of :func:`text_envs.judges.judge_completions` a TextGeneration-v0 cell records."""


def _text_env(num_envs: int, prompts: str | list[str], model: str | None):
    """The TextGeneration envs of the cells: the default reward model, the tokenizer of the cell's ``model``."""
    from text_envs.generation.vector_env import TextGenerationVectorEnv
    from text_envs.rewards.trained import default_reward_model

    return TextGenerationVectorEnv(
        num_envs, tokenizer=model, prompts=prompts, reward_model=default_reward_model(), max_new_tokens=MAX_NEW_TOKENS
    )


def held_out_prompts(episodes: int) -> list[str]:
    """``episodes`` held-out prompts: the default test prompts in order, cycled (each equally often when
    ``episodes`` is a multiple of their number)."""
    from text_envs.defaults import DEFAULT_PROMPTS_TEST
    from text_envs.generation.prompts import load_prompts

    prompts = load_prompts(DEFAULT_PROMPTS_TEST)
    return [prompts[i % len(prompts)] for i in range(episodes)]


@lru_cache(maxsize=1)
def _perplexity_judge(judge_lm: str | None) -> tuple[PerplexityJudge | None, str]:
    """The judge LM and its name, or ``(None, why not)``; loaded once for every text cell of a process."""
    from text_envs.judges import load_perplexity_judge

    if judge_lm is None:
        return None, "no judge LM in the spec"
    return load_perplexity_judge(judge_lm)


def _evaluate_text(
    model: nn.Module, reference_logprobs: Callable[[RolloutBatch], torch.Tensor], context: CellContext
) -> dict[str, float | str]:
    """:func:`~text_envs_agents.llm.evaluation.evaluate_text_policy` on ``context.episodes`` held-out completions
    (:func:`held_out_prompts`): score, gold (the lexicon), KL, length, the judged figures and ``judge_lm``."""
    from text_envs.judges import NO_VADER, vader_available
    from text_envs.rewards.lexicon import lexicon_sentiment_reward
    from text_envs_agents.llm.evaluation import evaluate_text_policy

    prompts = held_out_prompts(context.episodes)
    judge, judge_name = _perplexity_judge(context.judge_lm)
    if not vader_available():
        warnings.warn(NO_VADER, stacklevel=2)
    evaluation = evaluate_text_policy(
        model,
        reference_logprobs,
        _text_env(min(len(prompts), TEXT_EVAL_ENVS), prompts, context.model),
        seed=context.eval_seed,
        scorers={"gold": lexicon_sentiment_reward},
        perplexity_judge=judge,
    )
    metrics = evaluation.metrics
    return {
        "score": metrics["score_mean"],
        "gold": metrics["gold_mean"],
        "kl": metrics["kl"],
        "completion_length": metrics["completion_length"],
        **{key: metrics[key] for key in TEXT_JUDGED if key in metrics},
        "judge_lm": judge_name,
    }


def _default_lm_text_generation(context: CellContext) -> CellResult:
    """The cell's LM untrained: the reference every RLHF run starts from (its KL to itself is 0)."""
    from text_envs.lm import load_causal_lm
    from text_envs_agents.llm.rollout import sequence_logprobs

    model = load_causal_lm(context.model)
    return CellResult(_evaluate_text(model, lambda batch: sequence_logprobs(model, batch), context))


def _textppo_text_generation(context: CellContext) -> CellResult:
    """TextPPO against the default reward model; the curve is the reward-model score of each training batch."""
    from text_envs.defaults import DEFAULT_PROMPTS_TRAIN
    from text_envs_agents.llm.rollout import sequence_logprobs
    from text_envs_agents.text_ppo.trainer import TextPPO, TextPPOConfig

    assert context.budget is not None
    trainer = TextPPO(
        _text_env(TEXT_BATCH_SIZE, str(DEFAULT_PROMPTS_TRAIN), context.model),
        context.model,
        config=TextPPOConfig(kl_coef=KL_COEF, seed=context.seed),
    )
    curve: list[tuple[int, float]] = []
    tokens = 0.0

    def record(_: TextPPO, metrics: dict[str, float]) -> None:
        nonlocal tokens
        curve.append((int(tokens), metrics["score"]))  # the batch was sampled before this iteration's update
        tokens += metrics["completion_length"] * TEXT_BATCH_SIZE

    start = time.perf_counter()
    trainer.learn(iterations=context.budget, callback=record)
    train_seconds = time.perf_counter() - start
    reference = trainer.reference  # a frozen copy of the untrained LM (None only with LoRA, never used here)
    metrics = _evaluate_text(trainer.policy.model, lambda batch: sequence_logprobs(reference, batch), context)
    trainer.close()
    return CellResult(metrics, train_seconds, curve)


def _sb3_text_generation(algo: str, settings: SB3PPOSettings | SB3A2CSettings) -> Runner:
    """Stock SB3 ``algo`` with :class:`~text_envs_agents.sb3.policy.LMActorCriticPolicy` as ``text-envs-train --algo
    sb3-<algo>`` trains it (:func:`~text_envs_agents.sb3.rlhf.train_sb3_rlhf`), on the cells' env, for ``budget``
    tokens; the curve is the reward-model score of the episodes each rollout finished."""

    def run(context: CellContext) -> CellResult:
        from text_envs.defaults import DEFAULT_PROMPTS_TRAIN
        from text_envs.lm import load_causal_lm
        from text_envs.rewards.trained import default_reward_model
        from text_envs_agents.llm.rollout import sequence_logprobs
        from text_envs_agents.sb3.callbacks import EpisodeScoreCurve
        from text_envs_agents.sb3.rlhf import train_sb3_rlhf

        assert context.budget is not None
        curve = EpisodeScoreCurve()
        start = time.perf_counter()
        _, model = train_sb3_rlhf(
            algo,
            env_kwargs=dict(
                prompts=str(DEFAULT_PROMPTS_TRAIN), reward_model=default_reward_model(), max_new_tokens=MAX_NEW_TOKENS
            ),
            model=context.model,
            beta=KL_COEF,
            timesteps=context.budget,
            seed=context.seed,
            n_envs=SB3_N_ENVS,
            settings=settings,
            callback=curve,
        )
        train_seconds = time.perf_counter() - start
        reference = load_causal_lm(context.model).to(next(model.parameters()).device).eval()
        metrics = _evaluate_text(model, lambda batch: sequence_logprobs(reference, batch), context)
        return CellResult(metrics, train_seconds, curve.points)

    return run


def _rllib_ppo_text_generation(context: CellContext) -> CellResult:
    """RLlib PPO with :class:`~text_envs_agents.rllib.CausalLMTorchRLModule` as ``text-envs-train-rllib --env
    TextGeneration-v0`` trains it (sampling in this process, on a local Ray started for the cell if none runs), until
    ``budget`` tokens; the curve is the reward-model score of the episodes each iteration finished.

    The settings are :func:`~text_envs_agents.rllib.ppo_config`'s (lr 1e-5, 256 tokens a batch, minibatch 64, 2
    epochs), which tuning kept (seed 0; the untrained LM scores -1.90): lr 1e-5 reached -0.37 at 0.1 nats of KL at
    4,096 tokens and 2.10 at 14.8 nats at 8,192; 2e-5 1.79 at 7.1 nats at 4,096 but 1.54 at 31.6 nats (perplexity
    523, 5% broken text) at 8,192; 3e-5 1.80 at 23 nats at 4,096. The env has no KL penalty: a faster rate buys drift.
    """
    import ray

    from text_envs.lm import load_causal_lm
    from text_envs_agents.llm.rollout import sequence_logprobs
    from text_envs_agents.rllib import episode_score_mean, ppo_config

    assert context.budget is not None
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    curve: list[tuple[int, float]] = []
    try:
        start = time.perf_counter()
        config = ppo_config(
            "TextGeneration-v0",
            env_config={"max_new_tokens": MAX_NEW_TOKENS, "tokenizer": context.model},
            model_config={"model_name_or_path": context.model},
            num_env_runners=0,
            seed=context.seed,
        )
        algorithm = config.build_algo()
        try:
            tokens = 0
            while tokens < context.budget:
                result = algorithm.train()
                score = episode_score_mean(result)
                if score is not None:
                    curve.append((tokens, score))
                tokens = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
            train_seconds = time.perf_counter() - start
            model = algorithm.get_module().lm
        finally:
            algorithm.stop()
    finally:
        if started_ray:
            ray.shutdown()
    reference = load_causal_lm(context.model).to(next(model.parameters()).device).eval()
    metrics = _evaluate_text(model, lambda batch: sequence_logprobs(reference, batch), context)
    return CellResult(metrics, train_seconds, curve)


_GAME_COLUMNS = (
    Column("win", "win", 3),
    Column("draw", "draw", 3),
    Column("loss", "loss", 3),
    Column("illegal", "illegal", 3),
)

ENVS: dict[str, EnvInfo] = {
    TICTACTOE: EnvInfo(
        TICTACTOE,
        1000,
        Column("score", "mean reward vs random", 3),
        _GAME_COLUMNS,
        True,
        curve_label=f"mean reward vs random ({CURVE_GAMES} games)",
        curve_steps="agent moves",
        evaluate=_evaluate_tictactoe,
        make_env=_tictactoe_training_env,
        fits_by_default=True,
    ),
    TEXT_GENERATION: EnvInfo(
        TEXT_GENERATION,
        64,
        Column("score", "reward-model score", 2),
        (
            Column("gold", "gold score (lexicon)", 3),
            Column("vader_mean", "gold score (VADER)", 3),
            Column("perplexity", "perplexity", 1, judge_field="judge_lm"),
            Column("broken_share", "broken text (share)", 3),
            Column("distinct_2", "distinct-2", 3),
            Column("words_mean", "words", 1),
            Column("kl", "KL (nats/seq)", 1),
            Column("completion_length", "length (tokens)", 1),
        ),
        False,
        curve_label="reward-model score of the training batch",
        curve_steps="tokens generated",
    ),
    TICTACTOE_TEXT: EnvInfo(
        TICTACTOE_TEXT,
        200,
        Column("score", "mean reward vs random", 3),
        _GAME_COLUMNS,
        False,
        curve_label="mean reward vs random (20 games)",
        curve_steps="agent tokens",
        evaluate=_evaluate_tictactoe_text,
        make_env=_tictactoe_text_env,
        curve_episodes=20,
    ),
}
"""The benchmark's envs by id: the built-in three, then any registered with ``register_env``."""


def env_id_for(name: str) -> str | None:
    """The registered env id a spec's ``name`` means: the id itself, or ``text_envs/<name>``; None if neither."""
    for env_id in (name, f"text_envs/{name}"):
        if env_id in ENVS:
            return env_id
    return None


def _random(seed: int) -> Agent:
    return RandomAgent(seed=seed)


def _minimax(seed: int) -> Agent:
    return MinimaxAgent(seed=seed)


AGENTS: dict[str, AgentInfo] = {
    agent.name: agent
    for agent in (
        AgentInfo(
            "random",
            "uniform over the legal moves (on TicTacToeText-v0 it reads the board and writes the digit)",
            {TICTACTOE: _untrained_tictactoe(_random), TICTACTOE_TEXT: _through_text(_random)},
        ),
        AgentInfo(
            "minimax",
            "perfect play from the solved game (through text on TicTacToeText-v0)",
            {TICTACTOE: _untrained_tictactoe(_minimax), TICTACTOE_TEXT: _through_text(_minimax)},
        ),
        AgentInfo(
            "q-learning",
            "tabular Q-learning against minimax playing randomly half the time",
            {TICTACTOE: _trained_tictactoe("qlearning")},
            default_budget=1_000_000,
            budget_unit="agent moves",
        ),
        AgentInfo(
            "maskable-ppo",
            "sb3-contrib MaskablePPO with text-envs-train-tictactoe's tuned settings (its default is 200k moves)",
            {TICTACTOE: _trained_tictactoe("maskable_ppo")},
            default_budget=100_000,
            budget_unit="agent moves",
            extra=("sb3-contrib", "sb3_contrib"),
        ),
        AgentInfo(
            "default-lm",
            "the spec's LM (default: the embedded one), untrained (sampling on TextGeneration-v0, greedy on "
            "TicTacToeText-v0)",
            {TEXT_GENERATION: _default_lm_text_generation, TICTACTOE_TEXT: _default_lm_tictactoe_text},
            uses_model=True,
        ),
        AgentInfo(
            "lm-warm-start-ppo",
            "the embedded LM after a warm start on minimax moves and stock SB3 PPO on whole games vs random "
            "(text-envs-train-tictactoe-lm's defaults), sampled at temperature 1",
            {TICTACTOE_TEXT: _lm_tictactoe_text(_embedded_warm_start_sb3_ppo)},
            default_budget=500,
            budget_unit="games of imitation, then as many of RL",
        ),
        AgentInfo(
            "smollm2-warm-start-textppo",
            "SmolLM2-135M-Instruct (LoRA, chat prompts, whole games in the context) after a warm start on the "
            "minimax agent's moves (ties by the lowest cell) and multi-turn TextPPO vs random, sampled at "
            "temperature 1",
            {TICTACTOE_TEXT: _lm_tictactoe_text(_smollm2_warm_start_textppo)},
            default_budget=256,
            budget_unit="games of imitation, then a quarter as many of TextPPO",
            registered_model=SMOLLM2,
        ),
        AgentInfo(
            "textppo",
            f"the spec's LM (default: the embedded one) fine-tuned by TextPPO against the default reward model, "
            f"β = {KL_COEF}",
            {TEXT_GENERATION: _textppo_text_generation},
            default_budget=60,
            budget_unit=f"iterations of {TEXT_BATCH_SIZE} episodes",
            uses_model=True,
        ),
        AgentInfo(
            "sb3-ppo",
            f"the spec's LM as an SB3 LMActorCriticPolicy trained by stock stable-baselines3 PPO against the default "
            f"reward model, KLPenalty β = {KL_COEF}, learning rate {SB3_PPO_SETTINGS.learning_rate:g}",
            {TEXT_GENERATION: _sb3_text_generation("ppo", SB3_PPO_SETTINGS)},
            default_budget=8192,
            budget_unit="tokens generated",
            uses_model=True,
        ),
        AgentInfo(
            "sb3-a2c",
            f"the spec's LM as an SB3 LMActorCriticPolicy trained by stock stable-baselines3 A2C against the default "
            f"reward model, KLPenalty β = {KL_COEF}, learning rate {SB3_A2C_SETTINGS.learning_rate:g}",
            {TEXT_GENERATION: _sb3_text_generation("a2c", SB3_A2C_SETTINGS)},
            default_budget=8192,
            budget_unit="tokens generated",
            uses_model=True,
        ),
        AgentInfo(
            "rllib-ppo",
            "the spec's LM as RLlib's CausalLMTorchRLModule trained by RLlib PPO against the default reward model "
            "(no KL penalty to the reference: text-envs-train-rllib's recipe)",
            {TEXT_GENERATION: _rllib_ppo_text_generation},
            default_budget=8192,
            budget_unit="tokens generated",
            uses_model=True,
            extra=("rllib", "ray"),
        ),
    )
}
"""The benchmark's agents by name: the built-in eleven, then any registered with ``register_agent``."""


def agents_table() -> str:
    """Every registered agent as a Markdown table: the envs it fits, its default budget, its description."""
    lines = ["| agent | fits | default budget | description |", "|---|---|---|---|"]
    for info in AGENTS.values():
        envs = ", ".join(ENVS[env_id].name for env_id in info.runners)
        budget = "-" if info.default_budget is None else f"{info.default_budget:,} {info.budget_unit}"
        lines.append(f"| {info.name} | {envs} | {budget} | {info.description} |")
    return "\n".join(lines) + "\n"
