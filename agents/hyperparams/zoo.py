"""``python -m rl_zoo3.train`` with sb3-contrib's MaskablePPO as ``--algo ppo_mask``; every other flag is RL Zoo's.

rl_zoo3 2.x lists no MaskablePPO (``rl_zoo3.utils.ALGOS`` has ppo, ppo_lstm, ...), so this entry point adds it
and, for ``ppo_mask``, swaps RL Zoo's ``EvalCallback`` for sb3-contrib's ``MaskableEvalCallback``: periodic
evaluations (``--eval-freq``) then pass the env's action masks, as training does. Hyper-parameter search
(``-optimize``) has no ``ppo_mask`` sampler in RL Zoo and is not supported for it. ::

    python -m text_envs_agents.hyperparams.zoo --algo ppo_mask --env text_envs/TicTacToe-v0 \\
        --conf-file "$(python -m text_envs_agents.hyperparams)" --gym-packages text_envs -f logs/

The model lands in ``<log folder>/ppo_mask/<env>_<run>/<env>.zip`` (RL Zoo's layout); load it with
``sb3_contrib.MaskablePPO.load``.
"""

from __future__ import annotations

import sys

ZOO_ALGO = "ppo_mask"


def register_maskable_ppo() -> None:
    """Make ``ppo_mask`` an RL Zoo algorithm in this process (train, enjoy and the experiment manager share ALGOS)."""
    try:
        import rl_zoo3.exp_manager
        import rl_zoo3.utils
    except ImportError as error:
        raise ImportError(f"RL Zoo is not installed ({error}); pip install 'text_envs[zoo]'") from error
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback

    rl_zoo3.utils.ALGOS[ZOO_ALGO] = MaskablePPO
    if _algo(sys.argv[1:]) == ZOO_ALGO:
        # exp_manager imported EvalCallback by name; MaskableEvalCallback takes the same arguments.
        rl_zoo3.exp_manager.EvalCallback = MaskableEvalCallback


def _algo(argv: list[str]) -> str | None:
    for index, argument in enumerate(argv):
        if argument == "--algo" and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith("--algo="):
            return argument.split("=", 1)[1]
    return None


def main() -> None:
    register_maskable_ppo()
    from rl_zoo3.train import train

    train()


if __name__ == "__main__":
    main()
