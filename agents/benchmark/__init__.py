"""One benchmark for every agent on every env it fits: agents × envs × seeds, trained, evaluated, summarised.

``scripts/benchmark.py`` is the command line; :func:`run_benchmark` does the work::

    from text_envs_agents.benchmark import BenchmarkSpec, run_benchmark

    run_benchmark(BenchmarkSpec(agents=("random", "q-learning"), seeds=(0, 1)), "runs/benchmark")

## Cells
A **cell** is one agent on one env with one seed (:mod:`text_envs_agents.benchmark.spec`). Its runner
(:mod:`text_envs_agents.benchmark.registry`) trains the agent when it needs training, within the agent's
**budget**, recording a learning curve, then evaluates it over the env's **episodes**. Agents and
the envs they fit:

| agent | TicTacToe-v0 | TextGeneration-v0 | TicTacToeText-v0 | budget (default) |
|---|---|---|---|---|
| random | legal moves | - | reads the board, writes the digit | - |
| minimax | perfect play | - | reads the board, writes the digit | - |
| q-learning | trained | - | - | 1,000,000 agent moves |
| maskable-ppo | trained | - | - | 100,000 agent moves |
| default-lm | - | the embedded LM, sampled | the same LM as an SB3 policy, greedy, zero-shot | - |
| textppo | - | trained against the default reward model | - | 60 iterations of 32 episodes |

Tic-Tac-Toe agents train as ``scripts/train_tictactoe.py`` does (against minimax playing randomly
half the time, alternating sides); MaskablePPO gets half its 200k-move default to fit the time
budget. TextPPO trains as ``scripts/train_text.py`` does (β = 0.1, learning rate 1e-4, 32 episodes
per iteration, 24 new tokens at most) for half its 120 iterations. No LLM is trained on
TicTacToeText-v0: the embedded LM (trained on reviews) gives the digits 1-9 a total probability of
about 7e-7 after the prompt, so a policy-gradient run would not see one rewarded move within minutes.

## Metrics
Every cell has one primary ``score`` and its env's other columns (:data:`registry.ENVS`):

- Tic-Tac-Toe envs: the mean game reward against the random opponent (+1 win, 0 draw, -1 loss or
  illegal move), half the games as each side, deterministic policies; plus win, draw, loss and
  illegal-move rates. 1,000 games (TicTacToe-v0) or 200 (TicTacToeText-v0) per seed by default.
- TextGeneration-v0: the default reward model's score (logit, per sequence) of one sampled
  completion per held-out prompt (64 by default); plus the gold score (the lexicon evaluator, which
  no model trains on), the KL to the embedded LM (nats per sequence) and the completion length.

Evaluation uses seed ``10_000 + seed``: every agent of a seed meets the same prompts and the same random
streams of the opponent.
Learning curves: Tic-Tac-Toe agents are evaluated over 200 games at 21 points of their training;
TextPPO's curve is the reward-model score of each training batch, against tokens generated.

## Outputs
In the output directory: ``results.json`` (one row per cell, learning curve included) and
``results.csv`` (the same without curves), both rewritten atomically after every cell; ``table.md``
(per env, each metric as mean ± half-width of the 95% confidence interval over seeds, Student's t;
"n=1" with one seed); ``final_scores.png`` (bars at the mean score with 95% CI error bars and a dot
per seed, a panel per env) and ``learning_curves.png``.

## Resuming
A cell is identified by (agent, env, seed, episodes, budget): a rerun skips every cell already in
``results.json`` and runs only the missing ones; changing a budget or an episode count makes new
cells. Cells are independent (each seeds its own training and evaluation), so a resumed benchmark
gives the rows a single run would (up to torch's thread-dependent float rounding).

## Threads
torch runs on one thread in the TicTacToe-v0 cells (small MLPs and tables are fastest so) and on
``threads`` in the LLM cells. The default is 1: on this 2-core machine, shared with other jobs, a
TextPPO iteration took 1.3 s on one thread and 3 to 12 s on two while another process was busy
(on an idle machine the README measured 1.5x for the reward model with two threads).
"""

from text_envs_agents.benchmark.registry import AGENTS, ENVS, AgentInfo, EnvInfo
from text_envs_agents.benchmark.results import confidence_interval, markdown_table, t_quantile_975
from text_envs_agents.benchmark.runner import BenchmarkRun, run_benchmark, run_cell
from text_envs_agents.benchmark.spec import QUICK_SPEC, BenchmarkSpec, Cell, SpecError, load_spec, spec_from_mapping

__all__ = [
    "AGENTS",
    "ENVS",
    "QUICK_SPEC",
    "AgentInfo",
    "BenchmarkRun",
    "BenchmarkSpec",
    "Cell",
    "EnvInfo",
    "SpecError",
    "confidence_interval",
    "load_spec",
    "markdown_table",
    "run_benchmark",
    "run_cell",
    "spec_from_mapping",
    "t_quantile_975",
]
