"""Seconds of ``import text_envs; gym.make("text_envs/TicTacToe-v0")`` in fresh processes, beside another checkout.

    python scripts/bench_import.py                            # this checkout, 5 fresh processes
    python scripts/bench_import.py --other /tmp/before        # interleaved with a checkout of an older commit
                                                              # (git worktree add /tmp/before 30884cc)

Each trial starts a new interpreter (imports are cached within one), in a temporary working folder so the
repository on ``sys.path`` cannot shadow the checkout under test; ``--other`` puts that checkout first on
``PYTHONPATH`` and runs the pairs alternately. Prints the median seconds of each and whether torch or
transformers were loaded.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tyro

PROBE = """
import json, sys, time
start = time.perf_counter()
import gymnasium as gym
import text_envs
gym.make("text_envs/TicTacToe-v0")
print(json.dumps({"seconds": time.perf_counter() - start, "file": text_envs.__file__,
                  "torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules}))
"""


@dataclass
class Args:
    trials: int = 5
    """fresh processes per checkout"""
    other: str = ""
    """another checkout to time beside this one, interleaved (empty: this checkout only)"""


def trial(pythonpath: str | None) -> dict:
    env = {**os.environ}
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run(
            [sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True, check=True
        )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if pythonpath and not result["file"].startswith(pythonpath):
        raise RuntimeError(f"text_envs came from {result['file']}, not from {pythonpath}")
    return result


def main() -> None:
    args = tyro.cli(Args, description=__doc__.split("\n")[0])
    contenders = {"this checkout": None} | (
        {f"other ({args.other})": str(Path(args.other).resolve())} if args.other else {}
    )
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for _ in range(args.trials):
        for name, path in contenders.items():
            runs[name].append(trial(path))
    print("| checkout | median s | trials (s) | torch loaded | transformers loaded |")
    print("|---|---:|---|---|---|")
    for name, results in runs.items():
        seconds = [r["seconds"] for r in results]
        print(
            f"| {name} | {statistics.median(seconds):.3f} | {', '.join(f'{s:.2f}' for s in seconds)} | "
            f"{results[0]['torch']} | {results[0]['transformers']} |"
        )


if __name__ == "__main__":
    main()
