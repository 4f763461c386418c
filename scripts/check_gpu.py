"""One command for a CUDA machine: the rollout and TRL comparisons and a short TextPPO training on SmolLM2-135M's shape.

    python scripts/check_gpu.py [--output-dir runs/gpu_check] [--device cuda] [--dtype auto] [--wheels DIR]
                                [--config-dir scripts/gpu_check/smollm2-config] [--quick]

Runs, on ``--device`` in ``--dtype`` (``auto``: bfloat16 on CUDA, float32 on the CPU), each part in turn:

1. ``rollout``: :func:`bench_rollout.measure`, ``generate`` beside the TextPPO rollout and the SB3 policy's
   cached path through the env (batch 16, 32 new tokens, 5 interleaved pairs; the policy path is left
   out where stable-baselines3 does not import). Target on a GPU: TextPPO rollout >= 2x ``generate``.
2. ``ppo``: :func:`bench_ppo.measure`, TextPPO beside TRL's GRPOTrainer (batch 16, 24 new tokens, 4
   passes of minibatch 16, lr 1e-6, bf16 mixed precision on both sides, 5 interleaved pairs of 2
   iterations). Target on a GPU: TextPPO >= 2x TRL.
3. ``training``: a short TextPPO run (20 iterations of 16 completions, lr 1e-5, lexicon reward, bf16
   mixed precision), its seconds per iteration and last metrics: that training runs on the device,
   not that it learns (the weights are random).

It prints each part's table and writes them all, with the machine's description, to
``<output-dir>/check_gpu.json``; a part that fails is recorded there with its error and the others still run.

The model is built from SmolLM2-135M-Instruct's ``config.json`` with random weights (seed 0), saved to a
temporary folder with the model's tokenizer: the real weights (540 MB) do not fit a small transfer, and
speed does not depend on their values (a random model also samples EOS with probability ~1/49,152, so
completions run to their length limit on both sides). ``scripts/gpu_check/smollm2-config/`` holds the
config and tokenizer files, copied from ``text_envs.models.model_folder("smollm2-135m-instruct")``.
``--quick`` shrinks everything (2 layers of width 64 with the same vocabulary and grouped-query attention,
batch 4, 8 new tokens, 2 pairs) so that ``--device cpu --quick`` checks the script on any machine.

## What it needs

Only torch, transformers, peft and accelerate installed, plus a bare copy of this repository: it imports
``text_envs`` from the repository root and aliases the folder ``agents/`` as the package
``text_envs_agents`` (what ``setup.py``'s ``package_dir`` does when installed), so nothing needs
``pip install -e .``. The other packages travel as wheels, none of which needs compiling.
Pure-Python wheels can be imported straight from their zip files: ``--wheels DIR`` puts every
``DIR/*.whl`` on ``sys.path`` (or install them: ``pip install --no-deps --no-index DIR/*.whl``).
Prepare them on a machine with a package registry (versions as in this project's venv)::

    pip download --no-deps -d wheels \\
        gymnasium==1.2.2 farama-notifications==0.0.6 cloudpickle==3.1.3 \\
        stable-baselines3==2.9.2 \\
        tyro==1.0.17 docstring-parser==0.18.0 typeguard==4.6.1 \\
        trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
    du -sh wheels    # about 3 MB

``datasets`` (which TRL imports) also needs ``pandas``, ``pyarrow`` and ``xxhash``, which are compiled
and large (pyarrow alone is tens of MB): if the GPU machine lacks them, the ``ppo`` part records TRL's
import error and reports TextPPO alone; add their wheels for the machine's Python if the transfer has
room (``pip download --no-deps --python-version 3.X --only-binary=:all: pandas pyarrow xxhash
python-dateutil six``). Whether the machine has them cannot be checked from here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
SMOLLM2_CONFIG_DIR = Path(__file__).resolve().parent / "gpu_check" / "smollm2-config"
QUICK_SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
}
"""``--quick``'s model: SmolLM2's vocabulary, tied head and grouped-query attention (2 heads per KV head)
at a size the CPU runs in seconds"""


@dataclass
class Args:
    output_dir: str = "runs/gpu_check"
    """where check_gpu.json goes"""
    device: Literal["cuda", "cpu"] = "cuda"
    """where every part runs"""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """auto: bfloat16 on CUDA, float32 on the CPU"""
    config_dir: str = str(SMOLLM2_CONFIG_DIR)
    """folder with the model's config.json and tokenizer files"""
    wheels: str = ""
    """folder of pure-Python wheels to import from (empty: use what is installed)"""
    quick: bool = False
    """tiny model and settings, to check the script itself (e.g. on the CPU)"""
    threads: int = 1
    """torch.set_num_threads for every part"""


def make_importable(wheels: str) -> None:
    """``text_envs`` and ``text_envs_agents`` from this checkout, the bench scripts, and ``wheels``' zip files.

    Must run before anything imports them.
    """
    if wheels:
        sys.path[:0] = sorted(str(path) for path in Path(wheels).glob("*.whl"))
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if importlib.util.find_spec("text_envs_agents") is None:
        # What setup.py's package_dir={"text_envs_agents": "agents"} does for an installed copy.
        agents = ROOT / "agents"
        spec = importlib.util.spec_from_file_location(
            "text_envs_agents", agents / "__init__.py", submodule_search_locations=[str(agents)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["text_envs_agents"] = module
        spec.loader.exec_module(module)


def build_random_model(config_dir: str, folder: Path, quick: bool) -> Path:
    """A causal LM of ``config_dir``'s configuration (``QUICK_SHAPE`` with ``quick``) with random weights (seed 0),
    saved in float32 with the tokenizer into ``folder``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(config_dir)
    if quick:
        config.update(QUICK_SHAPE)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config, dtype=torch.float32).save_pretrained(folder)
    AutoTokenizer.from_pretrained(config_dir).save_pretrained(folder)
    return folder


def rollout_part(model: str, args: Args, dtype: str) -> dict[str, object]:
    import bench_rollout

    try:
        import stable_baselines3  # noqa: F401  (the policy path needs it)

        paths: tuple[str, ...] = ("policy-cached", "text-ppo")
    except ImportError:
        paths = ("text-ppo",)
    settings = bench_rollout.Args(
        num_envs=4 if args.quick else 16,
        max_new_tokens=8 if args.quick else 32,
        rounds=1 if args.quick else 2,
        pairs=2 if args.quick else 5,
        model=model,
        device=args.device,
        dtype=dtype,
        paths=paths,
        threads=args.threads,
    )
    figures = bench_rollout.measure(settings)
    bench_rollout.report(figures)
    return figures


def ppo_settings(model: str, args: Args, dtype: str):
    import bench_ppo

    return bench_ppo.Args(
        batch_size=4 if args.quick else 16,
        max_new_tokens=8 if args.quick else 24,
        iterations=1 if args.quick else 2,
        pairs=2 if args.quick else 5,
        ppo_epochs=1 if args.quick else 4,
        minibatch_size=4 if args.quick else 16,
        num_generations=2 if args.quick else 4,
        learning_rate=1e-6,
        model=model,
        device=args.device,
        dtype=dtype,
        threads=args.threads,
    )


def ppo_part(model: str, args: Args, dtype: str) -> dict[str, object]:
    import bench_ppo

    settings = ppo_settings(model, args, dtype)
    bench_ppo.check(settings)
    figures = bench_ppo.measure(settings)
    bench_ppo.report(figures, settings)
    return figures


def training_part(model: str, args: Args, dtype: str) -> dict[str, object]:
    """A short TextPPO run on the lexicon reward, built as bench_ppo builds its TextPPO side."""
    import bench_ppo

    settings = ppo_settings(model, args, dtype)
    settings.learning_rate = 1e-5
    iterations = 2 if args.quick else 20
    run = bench_ppo.build("text_ppo", settings, bench_ppo.load_reward(settings.reward_model), iterations)
    seconds = [run.run(1) for _ in range(iterations)]
    history = run.agent.history
    run.close()
    last = history[-1]
    print(
        f"TextPPO training: {iterations} iterations of {settings.batch_size} completions in {dtype}, "
        f"median {statistics.median(seconds[1:] or seconds):.2f} s per iteration after the first "
        f"({seconds[0]:.2f} s); last: score {last['score']:.3f}, kl {last['kl']:.3f}, "
        f"completion length {last['completion_length']:.1f}"
    )
    return {
        "iterations": iterations,
        "batch_size": settings.batch_size,
        "seconds_per_iteration": seconds,
        "median_seconds_per_iteration_after_first": statistics.median(seconds[1:] or seconds),
        "history": history,
    }


def machine(device: str) -> dict[str, object]:
    import torch
    import transformers

    description: dict[str, object] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu_cores": os.cpu_count(),
    }
    if device == "cuda":
        description["gpu"] = torch.cuda.get_device_name()
        description["cuda"] = torch.version.cuda
    return description


def main() -> None:
    make_importable_from_argv()
    import tyro

    args = tyro.cli(Args, description=__doc__.split("\n")[0])
    import torch

    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("check_gpu.py: torch sees no CUDA device here (for a CPU check: --device cpu --quick)")
    dtype = ("bfloat16" if args.device == "cuda" else "float32") if args.dtype == "auto" else args.dtype
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    report: dict[str, object] = {"settings": asdict(args), "dtype": dtype, "machine": machine(args.device)}
    parts: dict[str, Callable[[str, Args, str], dict[str, object]]] = {
        "rollout": rollout_part,
        "ppo": ppo_part,
        "training": training_part,
    }
    with tempfile.TemporaryDirectory() as scratch:
        model = str(build_random_model(args.config_dir, Path(scratch) / "model", args.quick))
        for name, part in parts.items():
            print(f"\n## {name}")
            start = time.perf_counter()
            try:
                report[name] = part(model, args, dtype)
            except Exception as error:  # noqa: BLE001  (one failed part must not lose the others' figures)
                traceback.print_exc()
                report[name] = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
            report[name]["part_seconds"] = time.perf_counter() - start
    path = output / "check_gpu.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    failed = [name for name in parts if "error" in report[name]]
    print(f"\nwrote {path}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    if failed:
        raise SystemExit(1)


def make_importable_from_argv() -> None:
    """:func:`make_importable` with ``--wheels`` read ahead of tyro, which may itself come from a wheel."""
    argv = sys.argv[1:]
    pairs = [argument.split("=", 1) for argument in argv if argument.startswith("--wheels=")]
    pairs += [[flag, value] for flag, value in zip(argv, argv[1:], strict=False) if flag == "--wheels"]
    wheels = pairs[0][1] if pairs else ""
    make_importable(wheels)


if __name__ == "__main__":
    main()
