"""The benchmark's envs and agents: what each env measures, and how each agent is built, trained and evaluated.

An agent fits the envs it has a runner for; a runner takes a :class:`CellContext` (seed, episodes,
training budget) and returns a :class:`CellResult` (the env's metrics and, for a trained agent, a
learning curve). Adding an agent is adding an :class:`AgentInfo` to :data:`AGENTS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from text_envs.agent_protocol import Agent
from text_envs.tictactoe.evaluation import GameResults, evaluate_tictactoe, evaluate_tictactoe_text
from text_envs_agents.minimax_agent import MinimaxAgent
from text_envs_agents.random_agent import RandomAgent
from text_envs_agents.text_tictactoe_agent import TextTicTacToeAgent
from text_envs_agents.tictactoe_training import train_tictactoe_agent

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
"""Completion length limit of the TextGeneration-v0 cells (tokens), as in scripts/train_text.py."""
KL_COEF = 0.1
"""β of TextPPO in the benchmark (reward units per nat), scripts/train_text.py's default."""


@dataclass(frozen=True)
class Column:
    """A metric of an env's cells: its key in the results, its table heading, and the decimals shown."""

    key: str
    label: str
    decimals: int


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

    @property
    def name(self) -> str:
        """The id without the ``text_envs/`` namespace, as the spec and the table write it."""
        return self.env_id.split("/")[-1]


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
    ),
    TEXT_GENERATION: EnvInfo(
        TEXT_GENERATION,
        64,
        Column("score", "reward-model score", 2),
        (
            Column("gold", "gold score", 3),
            Column("kl", "KL (nats/seq)", 1),
            Column("completion_length", "length (tokens)", 1),
        ),
        False,
        curve_label="reward-model score of the training batch",
        curve_steps="tokens generated",
    ),
    TICTACTOE_TEXT: EnvInfo(TICTACTOE_TEXT, 200, Column("score", "mean reward vs random", 3), _GAME_COLUMNS, False),
}


@dataclass(frozen=True)
class CellContext:
    """What one cell's runner is given: the seed, the evaluation episodes and the training budget (None: untrained)."""

    seed: int
    episodes: int
    budget: int | None

    @property
    def eval_seed(self) -> int:
        return EVAL_SEED_OFFSET + self.seed


@dataclass
class CellResult:
    """One cell's outcome: ``metrics`` holds ``score`` and the env's columns; ``curve`` is ``(env steps, score)``."""

    metrics: dict[str, float]
    train_seconds: float = 0.0
    curve: list[tuple[int, float]] = field(default_factory=list)


Runner = Callable[[CellContext], CellResult]


@dataclass(frozen=True)
class AgentInfo:
    """A benchmark agent: a runner per env it fits and, for a trained agent, its default training budget."""

    name: str
    description: str
    runners: dict[str, Runner]
    default_budget: int | None = None
    budget_unit: str = ""

    @property
    def trained(self) -> bool:
        return self.default_budget is not None

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


def _untrained_tictactoe(make_agent: Callable[[int], Agent]) -> Runner:
    def run(context: CellContext) -> CellResult:
        results = evaluate_tictactoe(make_agent(context.seed), "random", context.episodes, seed=context.eval_seed)
        return CellResult(_game_metrics(results))

    return run


def _trained_tictactoe(algo: str) -> Runner:
    """Train with scripts/train_tictactoe.py's settings; the curve is the score over CURVE_GAMES games."""

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
        results = evaluate_tictactoe(agent, "random", context.episodes, seed=context.eval_seed)
        return CellResult(_game_metrics(results), train_seconds, curve)

    return run


def _through_text(make_agent: Callable[[int], Agent]) -> Runner:
    def run(context: CellContext) -> CellResult:
        agent = TextTicTacToeAgent(make_agent(context.seed))
        return CellResult(_game_metrics(evaluate_tictactoe_text(agent, "random", context.episodes, context.eval_seed)))

    return run


def _default_lm_tictactoe_text(context: CellContext) -> CellResult:
    """The embedded LM as the stable-baselines3 policy that PPO would train (greedy), zero-shot."""
    from text_envs.tictactoe.text_env import TicTacToeTextEnv
    from text_envs_agents.sb3.policy import LMActorCriticPolicy

    spaces_env = TicTacToeTextEnv()
    policy = LMActorCriticPolicy(spaces_env.observation_space, spaces_env.action_space, lr_schedule=lambda _: 0.0)
    return CellResult(_game_metrics(evaluate_tictactoe_text(policy, "random", context.episodes, context.eval_seed)))


# ----------------------------------------------------------------------------------------- text generation
def _text_env(num_envs: int, prompts: str):
    from text_envs.generation.vector_env import TextGenerationVectorEnv
    from text_envs.rewards.trained import default_reward_model

    return TextGenerationVectorEnv(
        num_envs, prompts=prompts, reward_model=default_reward_model(), max_new_tokens=MAX_NEW_TOKENS
    )


def _text_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return {
        "score": metrics["score_mean"],
        "gold": metrics["gold_mean"],
        "kl": metrics["kl"],
        "completion_length": metrics["completion_length"],
    }


def _default_lm_text_generation(context: CellContext) -> CellResult:
    """The embedded LM untrained: the reference every RLHF run starts from (its KL to itself is 0)."""
    from text_envs.defaults import DEFAULT_PROMPTS_TEST
    from text_envs.lm import load_causal_lm
    from text_envs.rewards.lexicon import lexicon_sentiment_reward
    from text_envs_agents.llm.evaluation import evaluate_lm
    from text_envs_agents.llm.rollout import sequence_logprobs

    model = load_causal_lm(None)
    metrics, _ = evaluate_lm(
        model,
        lambda batch: sequence_logprobs(model, batch),
        _text_env(context.episodes, str(DEFAULT_PROMPTS_TEST)),
        context.eval_seed,
        lexicon_sentiment_reward,
    )
    return CellResult(_text_metrics(metrics))


def _textppo_text_generation(context: CellContext) -> CellResult:
    """TextPPO against the default reward model; the curve is the reward-model score of each training batch."""
    from text_envs.defaults import DEFAULT_PROMPTS_TEST, DEFAULT_PROMPTS_TRAIN
    from text_envs.rewards.lexicon import lexicon_sentiment_reward
    from text_envs_agents.text_ppo.trainer import TextPPO, TextPPOConfig

    assert context.budget is not None
    trainer = TextPPO(
        _text_env(TEXT_BATCH_SIZE, str(DEFAULT_PROMPTS_TRAIN)),
        config=TextPPOConfig(kl_coef=KL_COEF, seed=context.seed),
    )
    curve: list[tuple[int, float]] = []
    tokens = 0.0

    def record(_: TextPPO, metrics: dict[str, float]) -> None:
        nonlocal tokens
        curve.append((int(tokens), metrics["score"]))  # the batch was sampled before this iteration's update
        tokens += metrics["completion_length"] * TEXT_BATCH_SIZE

    start = time.perf_counter()
    trainer.learn(context.budget, callback=record)
    train_seconds = time.perf_counter() - start
    metrics, _ = trainer.evaluate(
        _text_env(context.episodes, str(DEFAULT_PROMPTS_TEST)), context.eval_seed, lexicon_sentiment_reward
    )
    trainer.close()
    return CellResult(_text_metrics(metrics), train_seconds, curve)


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
            "sb3-contrib MaskablePPO with scripts/train_tictactoe.py's tuned settings (its default is 200k moves)",
            {TICTACTOE: _trained_tictactoe("maskable_ppo")},
            default_budget=100_000,
            budget_unit="agent moves",
        ),
        AgentInfo(
            "default-lm",
            "the embedded pretrained LM, untrained (sampling on TextGeneration-v0, greedy on TicTacToeText-v0)",
            {TEXT_GENERATION: _default_lm_text_generation, TICTACTOE_TEXT: _default_lm_tictactoe_text},
        ),
        AgentInfo(
            "textppo",
            f"the embedded LM fine-tuned by TextPPO against the default reward model, β = {KL_COEF}",
            {TEXT_GENERATION: _textppo_text_generation},
            default_budget=60,
            budget_unit=f"iterations of {TEXT_BATCH_SIZE} episodes",
        ),
    )
}
