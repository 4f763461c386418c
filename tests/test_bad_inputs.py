"""Every public constructor and loader, given wrong types, out-of-range values, NaN, and missing or corrupt files.

One table: each row is a call that must fail, the error type it must raise and a pattern its message must
contain (the argument or the file it is about), so that a user reading the error knows what to change.
A row that is accepted silently, or that fails with an unrelated traceback (a numpy or json error that
names nothing), fails here. Readers that skip bad lines by design (feedback files, completion files) are
checked for reporting each skipped line by file and line number instead. ``pytest -s`` prints the count.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from text_envs import TextGenerationEnv, TextGenerationVectorEnv, TicTacToeEnv, TicTacToeTextEnv, TicTacToeVectorEnv
from text_envs.defaults import DEFAULT_REWARD_MODEL_DIR
from text_envs.feedback.labelling import read_completions
from text_envs.feedback.records import append_record, check_record, make_record, read_feedback
from text_envs.models import MARKER, model_folder
from text_envs.rewards import load_reward_model
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs.shaping import (
    AdaptiveKLController,
    ClipReward,
    ClipTransform,
    DenseTerm,
    FixedKLController,
    KLPenalty,
    KLTerm,
    LengthPenalty,
    LengthTerm,
    MissingEOSPenalty,
    MissingEOSTerm,
    PotentialTerm,
    ReturnStdScaling,
    ScaleRewardByReturnStd,
    parse_shaping,
)
from text_envs_agents import TextPPO, TextPPOConfig
from text_envs_agents.benchmark.results import ResultsStore
from text_envs_agents.benchmark.spec import load_spec, spec_from_mapping

NAN = math.nan
BINARY = bytes(range(256)) * 4  # not UTF-8 (0x80 alone), and a NUL in the first line
BINARY_LINE = bytes(b for b in range(256) if b not in b"\r\n")  # the same, without line breaks


@dataclass(frozen=True)
class Case:
    """A call that must raise ``error`` with a message matching ``match`` (a regular expression)."""

    name: str
    call: Callable[[Any], Any]
    error: type[BaseException] | tuple[type[BaseException], ...]
    match: str


def score_of_length(prompt: str, completion: str) -> float:
    return float(len(completion))


class Inputs:
    """What the rows call with: a tokenizer, a small env, a saved TextPPO checkpoint and corrupt files."""

    def __init__(self, folder: Path, tokenizer: Any, reference_model: Any):
        self.folder = folder
        self.tokenizer = tokenizer
        self.reference_model = reference_model
        self.env = TextGenerationEnv(tokenizer=tokenizer, reward_model=lexicon_sentiment_reward, max_new_tokens=2)
        self.files: dict[str, Path] = {}

    def file(self, name: str, content: bytes | str) -> Path:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def text_env(self, cls: type, **arguments: Any) -> Any:
        """A TextGeneration env (single or vector) with ``arguments`` over small valid defaults."""
        base = {"tokenizer": self.tokenizer, "reward_model": lexicon_sentiment_reward, "max_new_tokens": 2}
        if cls is TextGenerationVectorEnv:
            return cls(2, **{**base, **arguments})
        return cls(**{**base, **arguments})


def text_env_cases() -> list[Case]:
    """TextGeneration's arguments, for the single and the vector env alike."""
    cases = []
    for cls in (TextGenerationEnv, TextGenerationVectorEnv):
        rows = [
            ("tokenizer path missing", {"tokenizer": "/nonexistent/tokenizer"}, OSError, "/nonexistent/tokenizer"),
            ("prompts file missing", {"prompts": "/nonexistent/prompts.txt"}, FileNotFoundError, "prompts.txt"),
            ("prompts jsonl missing", {"prompts": "/nonexistent/prompts.jsonl"}, FileNotFoundError, "prompts.jsonl"),
            ("prompts file binary", {"prompts": ("binary.txt", BINARY)}, ValueError, r"binary\.txt"),
            ("prompts jsonl binary", {"prompts": ("binary.jsonl", BINARY)}, ValueError, r"binary\.jsonl"),
            ("prompts file empty", {"prompts": ("empty.txt", b"")}, ValueError, r"empty\.txt"),
            (
                "prompts jsonl bad line",
                {"prompts": ("bad.jsonl", '{"prompt": "ok"}\n{oops\n')},
                ValueError,
                r"bad\.jsonl:2",
            ),
            ("prompts list empty", {"prompts": []}, ValueError, "prompt"),
            ("prompt not a string", {"prompts": ["fine", 7]}, ValueError, "prompt 1"),
            ("max_new_tokens 0", {"max_new_tokens": 0}, ValueError, "max_new_tokens"),
            ("max_new_tokens -1", {"max_new_tokens": -1}, ValueError, "max_new_tokens"),
            ("max_new_tokens nan", {"max_new_tokens": NAN}, (TypeError, ValueError), "max_new_tokens"),
            ("max_new_tokens '3'", {"max_new_tokens": "3"}, (TypeError, ValueError), "max_new_tokens"),
            ("max_new_tokens 2.5", {"max_new_tokens": 2.5}, (TypeError, ValueError), "max_new_tokens"),
            ("max_prompt_tokens 0", {"max_prompt_tokens": 0}, ValueError, "max_prompt_tokens"),
            ("context_length too short", {"context_length": 8, "max_prompt_tokens": 8}, ValueError, "context_length"),
            ("stop_tokens 'ab'", {"stop_tokens": "ab"}, (TypeError, ValueError), "stop_tokens"),
            ("stop token id out of range", {"stop_tokens": [10**6]}, ValueError, "stop token"),
            ("reward_model not callable", {"reward_model": 5}, TypeError, "reward_model"),
            ("observation_mode bad", {"observation_mode": "pixels"}, ValueError, "observation_mode"),
            ("architecture bad", {"architecture": "rnn"}, ValueError, "architecture"),
            ("prompt_truncation bad", {"prompt_truncation": "middle"}, ValueError, "prompt_truncation"),
            ("prompt_format bad", {"prompt_format": "markdown"}, ValueError, "prompt_format"),
            ("chat format without template", {"prompt_format": "chat"}, ValueError, "chat template"),
            ("system_prompt without chat", {"system_prompt": "be nice"}, ValueError, "system_prompt"),
            ("render_mode bad", {"render_mode": "human"}, ValueError, "render_mode"),
        ]
        for name, arguments, error, match in rows:
            cases.append(Case(f"{cls.__name__}: {name}", _text_env_call(cls, arguments), error, match))
    cases.append(
        Case("TextGenerationVectorEnv: num_envs 0", lambda _: TextGenerationVectorEnv(0), ValueError, "num_envs")
    )
    cases.append(
        Case(
            "TextGenerationEnv: reset prompt empty",
            lambda i: i.env.reset(options={"prompt": "   "}),
            ValueError,
            "prompt",
        )
    )
    return cases


def _text_env_call(cls: type, arguments: dict[str, Any]) -> Callable[[Inputs], Any]:
    def call(inputs: Inputs) -> Any:
        given = dict(arguments)
        if isinstance(given.get("prompts"), tuple):  # (file name, content): write the file first
            given["prompts"] = str(inputs.file(*given["prompts"]))
        return inputs.text_env(cls, **given)

    return call


def tictactoe_cases() -> list[Case]:
    cases = []
    for cls in (TicTacToeEnv, TicTacToeTextEnv):
        for name, arguments, error, match in [
            ("opponent unknown name", {"opponent": "grandmaster"}, ValueError, "opponent"),
            ("opponent without predict", {"opponent": 5}, TypeError, "opponent"),
            ("agent_first 'yes'", {"agent_first": "yes"}, ValueError, "agent_first"),
            ("agent_first 1.5", {"agent_first": 1.5}, ValueError, "agent_first"),
            ("opponent_epsilon nan", {"opponent_epsilon": NAN}, ValueError, "opponent_epsilon"),
            ("opponent_epsilon 2", {"opponent_epsilon": 2.0}, ValueError, "opponent_epsilon"),
            ("render_mode bad", {"render_mode": "human"}, ValueError, "render_mode"),
        ]:
            cases.append(Case(f"{cls.__name__}: {name}", _call(cls, **arguments), error, match))
    for name, arguments, error, match in [
        ("max_move_tokens 0", {"max_move_tokens": 0}, ValueError, "max_move_tokens"),
        ("max_move_tokens '2'", {"max_move_tokens": "2"}, ValueError, "max_move_tokens"),
        ("observation_mode bad", {"observation_mode": "pixels"}, ValueError, "observation_mode"),
        ("prompt_format bad", {"prompt_format": "markdown"}, ValueError, "prompt_format"),
        ("tokenizer path missing", {"tokenizer": "/nonexistent/tokenizer"}, OSError, "/nonexistent/tokenizer"),
    ]:
        cases.append(Case(f"TicTacToeTextEnv: {name}", _call(TicTacToeTextEnv, **arguments), error, match))
    cases += [
        Case("TicTacToeVectorEnv: num_envs 0", lambda _: TicTacToeVectorEnv(0), ValueError, "num_envs"),
        Case("TicTacToeVectorEnv: opponent bad", lambda _: TicTacToeVectorEnv(2, opponent="x"), ValueError, "opponent"),
        Case(
            "TicTacToeVectorEnv: autoreset_mode bad",
            lambda _: TicTacToeVectorEnv(2, autoreset_mode="sometimes"),
            ValueError,
            "sometimes",
        ),
        Case("TicTacToeEnv: action out of range", lambda _: _stepped(TicTacToeEnv(), 9), ValueError, "cell index"),
        Case("TicTacToeEnv: action 'a'", lambda _: _stepped(TicTacToeEnv(), "a"), ValueError, "cell index"),
        Case("TextGenerationEnv: action -1", lambda i: _stepped(i.env, -1), ValueError, "token id"),
        Case("TextGenerationEnv: action nan", lambda i: _stepped(i.env, NAN), ValueError, "token id"),
    ]
    return cases


def _call(cls: type, **arguments: Any) -> Callable[[Inputs], Any]:
    def call(inputs: Inputs) -> Any:
        if cls is TicTacToeTextEnv and "tokenizer" not in arguments:
            return cls(tokenizer=inputs.tokenizer, **arguments)
        return cls(**arguments)

    return call


def _stepped(env: Any, action: Any) -> Any:
    env.reset(seed=0)
    return env.step(action)


def shaping_cases() -> list[Case]:
    def wrapped(wrapper: type, **arguments: Any) -> Callable[[Inputs], Any]:
        return lambda inputs: wrapper(inputs.env, **arguments)

    return [
        Case("KLPenalty: beta nan", lambda i: KLPenalty(i.env, i.reference_model, beta=NAN), ValueError, "beta"),
        Case("KLPenalty: beta -1", lambda i: KLPenalty(i.env, i.reference_model, beta=-1.0), ValueError, "beta"),
        Case("KLPenalty: beta inf", lambda i: KLPenalty(i.env, i.reference_model, beta=math.inf), ValueError, "beta"),
        Case(
            "KLPenalty: estimator bad",
            lambda i: KLPenalty(i.env, i.reference_model, estimator="k9"),
            ValueError,
            "estimator",
        ),
        Case(
            "KLPenalty: missing_policy_logprob bad",
            lambda i: KLPenalty(i.env, i.reference_model, missing_policy_logprob="guess"),
            ValueError,
            "missing_policy_logprob",
        ),
        Case("KLTerm: beta nan", lambda _: KLTerm(NAN), ValueError, "beta"),
        Case("FixedKLController: nan", lambda _: FixedKLController(NAN), ValueError, "beta|KL coefficient"),
        Case("AdaptiveKLController: initial_beta nan", lambda _: AdaptiveKLController(NAN), ValueError, "initial_beta"),
        Case("AdaptiveKLController: initial_beta -1", lambda _: AdaptiveKLController(-1.0), ValueError, "initial_beta"),
        Case("AdaptiveKLController: target nan", lambda _: AdaptiveKLController(target=NAN), ValueError, "target"),
        Case("AdaptiveKLController: horizon 0", lambda _: AdaptiveKLController(horizon=0), ValueError, "horizon"),
        Case("AdaptiveKLController: horizon nan", lambda _: AdaptiveKLController(horizon=NAN), ValueError, "horizon"),
        Case("LengthPenalty: coef nan", wrapped(LengthPenalty, coef=NAN), ValueError, "coef"),
        Case("LengthPenalty: coef -1", wrapped(LengthPenalty, coef=-1.0), ValueError, "coef"),
        Case(
            "LengthPenalty: target_length -1",
            wrapped(LengthPenalty, coef=0.1, target_length=-1),
            ValueError,
            "target_length",
        ),
        Case(
            "LengthPenalty: target_length 2.5",
            wrapped(LengthPenalty, coef=0.1, target_length=2.5),
            ValueError,
            "target_length",
        ),
        Case("LengthTerm: coef '0.1'", lambda _: LengthTerm("0.1"), (TypeError, ValueError), "coef"),
        Case("MissingEOSPenalty: penalty nan", wrapped(MissingEOSPenalty, penalty=NAN), ValueError, "penalty"),
        Case("MissingEOSPenalty: penalty -1", wrapped(MissingEOSPenalty, penalty=-1.0), ValueError, "penalty"),
        Case("MissingEOSTerm: penalty inf", lambda _: MissingEOSTerm(math.inf), ValueError, "penalty"),
        Case("ClipReward: min > max", wrapped(ClipReward, min_reward=1.0, max_reward=-1.0), ValueError, "min_reward"),
        Case("ClipReward: min nan", wrapped(ClipReward, min_reward=NAN, max_reward=1.0), ValueError, "min_reward"),
        Case("ClipReward: max nan", wrapped(ClipReward, min_reward=-1.0, max_reward=NAN), ValueError, "max_reward"),
        Case("ClipReward: no bounds", wrapped(ClipReward), ValueError, "min_reward"),
        Case("ClipTransform: min > max", lambda _: ClipTransform(5, -5), ValueError, "min_reward"),
        Case(
            "ScaleRewardByReturnStd: epsilon nan", wrapped(ScaleRewardByReturnStd, epsilon=NAN), ValueError, "epsilon"
        ),
        Case("ScaleRewardByReturnStd: epsilon 0", wrapped(ScaleRewardByReturnStd, epsilon=0.0), ValueError, "epsilon"),
        Case("ScaleRewardByReturnStd: gamma 2", wrapped(ScaleRewardByReturnStd, gamma=2.0), ValueError, "gamma"),
        Case("ScaleRewardByReturnStd: gamma nan", wrapped(ScaleRewardByReturnStd, gamma=NAN), ValueError, "gamma"),
        Case("ReturnStdScaling: epsilon -1", lambda _: ReturnStdScaling(epsilon=-1.0), ValueError, "epsilon"),
        Case("DenseTerm: scorer not callable", lambda _: DenseTerm("score"), TypeError, "token_scorer"),
        Case("DenseTerm: coef nan", lambda _: DenseTerm(score_of_length, coef=NAN), ValueError, "coef"),
        Case("PotentialTerm: gamma nan", lambda _: PotentialTerm(score_of_length, gamma=NAN), ValueError, "gamma"),
        Case("PotentialTerm: potential None", lambda _: PotentialTerm(None), TypeError, "potential"),
    ]


def parse_shaping_cases() -> list[Case]:
    rows = [
        ("unclosed call", "LengthTerm(coef=0.1", "shaping spec"),
        ("not a call", "LengthTerm", "shaping spec"),
        ("unknown piece", "Bogus(1)", "unknown piece"),
        ("code in an argument", "LengthTerm(coef=__import__('os').getpid())", "literals"),
        ("nan by expression", "LengthTerm(coef=float('nan'))", "literals"),
        ("inf literal", "LengthTerm(coef=1e999)", "coef"),
        ("unknown keyword", "LengthTerm(coefficient=0.1)", "coefficient"),
        ("missing argument", "MissingEOSTerm()", "penalty"),
        ("bad import", "DenseTerm(token_scorer='os:no_such_function')", "cannot import"),
        ("import not callable", "DenseTerm(token_scorer='math:pi')", "not callable"),
        ("clip bounds reversed", "ClipTransform(5, -5)", "min_reward"),
        ("kwargs splat", "LengthTerm(**{'coef': 0.1})", "kwargs"),
        ("binary garbage", "\x00\xff(", "shaping spec"),
    ]
    cases = [
        Case(f"parse_shaping: {name}", lambda _, s=spec: parse_shaping(s), ValueError, m) for name, spec, m in rows
    ]
    cases.append(Case("parse_shaping: not a string", lambda _: parse_shaping(42), (TypeError, ValueError), "spec"))
    return cases


def config_cases() -> list[Case]:
    rows = [
        ("learning_rate", NAN),
        ("learning_rate", -1e-4),
        ("ppo_epochs", 0),
        ("minibatch_size", 0),
        ("gradient_accumulation_steps", 0),
        ("gamma", 1.5),
        ("lam", NAN),
        ("clip_range", -0.2),
        ("clip_range_value", NAN),
        ("value_coef", NAN),
        ("max_grad_norm", -1.0),
        ("kl_coef", NAN),
        ("kl_coef", -0.05),
        ("target_kl", 0.0),
        ("kl_horizon", 0),
        ("kl_estimator", "k9"),
        ("temperature", 0.0),
        ("temperature", NAN),
        ("mixed_precision", "fp16"),
        ("seed", -1),
        ("ppo_epochs", "4"),
    ]
    return [
        Case(
            f"TextPPOConfig: {field} {value!r}",
            lambda _, f=field, v=value: TextPPOConfig(**{f: v}),
            (TypeError, ValueError),
            field,
        )
        for field, value in rows
    ]


def checkpoint_cases() -> list[Case]:
    """TextPPO.load on a missing folder and on copies of one good checkpoint, each damaged one way."""

    def damaged(name: str, damage: Callable[[Path], None]) -> Callable[[Inputs], Any]:
        def call(inputs: Inputs) -> Any:
            folder = inputs.folder / "checkpoints" / name
            shutil.copytree(inputs.files["checkpoint"], folder)
            damage(folder)
            return TextPPO.load(folder, env=inputs.files["checkpoint_env"])

        return call

    def truncate(file: str) -> Callable[[Path], None]:
        def damage(folder: Path) -> None:
            path = _find(folder, file)
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

        return damage

    def overwrite(file: str, content: bytes) -> Callable[[Path], None]:
        return lambda folder: _find(folder, file).write_bytes(content)

    def remove(file: str) -> Callable[[Path], None]:
        return lambda folder: _find(folder, file).unlink()

    def edit_state(**changes: Any) -> Callable[[Path], None]:
        def damage(folder: Path) -> None:
            path = _find(folder, "trainer_state.json")
            state = json.loads(path.read_text())
            state.update(changes)
            path.write_text(json.dumps(state))

        return damage

    rows = [
        ("policy truncated", truncate("policy.safetensors"), ValueError, r"policy\.safetensors"),
        ("optimizer truncated", truncate("optimizer.safetensors"), ValueError, r"optimizer\.safetensors"),
        ("rng truncated", truncate("rng.safetensors"), ValueError, r"rng\.safetensors"),
        ("policy empty", overwrite("policy.safetensors", b""), ValueError, r"policy\.safetensors"),
        ("policy binary garbage", overwrite("policy.safetensors", BINARY), ValueError, r"policy\.safetensors"),
        ("state binary", overwrite("trainer_state.json", BINARY), ValueError, r"trainer_state\.json"),
        ("state truncated", truncate("trainer_state.json"), ValueError, r"trainer_state\.json"),
        ("state a list", overwrite("trainer_state.json", b"[]"), ValueError, r"trainer_state\.json"),
        ("state iteration 'x'", edit_state(iteration="x"), ValueError, "iteration"),
        ("state config not a dict", edit_state(config=3), ValueError, r"trainer_state\.json"),
        ("state config unknown field", edit_state(config={"no_such_field": 1}), ValueError, "no_such_field"),
        ("rng missing", remove("rng.safetensors"), FileNotFoundError, r"rng\.safetensors"),
        ("policy missing", remove("policy.safetensors"), FileNotFoundError, r"policy\.safetensors"),
    ]
    cases = [Case(f"TextPPO.load: {name}", damaged(name, d), error, match) for name, d, error, match in rows]
    cases.append(
        Case(
            "TextPPO.load: missing folder",
            lambda i: TextPPO.load(i.folder / "no_checkpoint"),
            FileNotFoundError,
            "no_checkpoint",
        )
    )
    cases.append(
        Case(
            "TextPPO.load: a file, not a folder",
            lambda i: TextPPO.load(i.file("plain.txt", "x")),
            FileNotFoundError,
            "plain.txt",
        )
    )
    return cases


def _find(folder: Path, name: str) -> Path:
    """The checkpoint file ``name`` wherever the checkpoint layout keeps it under ``folder``."""
    found = sorted(folder.rglob(name))
    assert found, f"no {name} under {folder}: {sorted(p.name for p in folder.rglob('*'))}"
    return found[0]


def reward_model_cases() -> list[Case]:
    def damaged(name: str, damage: Callable[[Path], None]) -> Callable[[Inputs], Any]:
        def call(inputs: Inputs) -> Any:
            folder = inputs.folder / "reward_models" / name
            shutil.copytree(DEFAULT_REWARD_MODEL_DIR, folder)
            damage(folder)
            return load_reward_model(folder, device="cpu")

        return call

    def config(content: bytes | str) -> Callable[[Path], None]:
        return lambda folder: (folder / "reward_model.json").write_bytes(
            content.encode() if isinstance(content, str) else content
        )

    def edit(**changes: Any) -> Callable[[Path], None]:
        def damage(folder: Path) -> None:
            record = json.loads((folder / "reward_model.json").read_text())
            record.update(changes)
            (folder / "reward_model.json").write_text(json.dumps(record))

        return damage

    def truncate_head(folder: Path) -> None:
        head = folder / "head.safetensors"
        head.write_bytes(head.read_bytes()[:40])

    rows = [
        ("config binary", config(BINARY), ValueError, r"reward_model\.json"),
        ("config not JSON", config("{backbone: minilm"), ValueError, r"reward_model\.json"),
        ("config a list", config("[]"), ValueError, r"reward_model\.json"),
        ("config unknown key", edit(surprise=1), ValueError, "surprise"),
        ("config wrong format", edit(format="something/2"), ValueError, "format"),
        ("backbone a Hub id", edit(backbone="gpt2"), ValueError, "allow_external_backbone"),
        ("backbone outside the folder", edit(backbone="../../elsewhere"), ValueError, "allow_external_backbone"),
        ("head truncated", truncate_head, ValueError, r"head\.safetensors"),
        (
            "head missing",
            lambda folder: (folder / "head.safetensors").unlink(),
            FileNotFoundError,
            r"head\.safetensors",
        ),
    ]
    cases = [Case(f"load_reward_model: {name}", damaged(name, d), error, match) for name, d, error, match in rows]
    cases.append(
        Case(
            "load_reward_model: missing folder",
            lambda i: load_reward_model(i.folder / "no_rm"),
            FileNotFoundError,
            "no_rm",
        )
    )
    return cases


def benchmark_cases() -> list[Case]:
    rows = [
        ("agents 5", {"agents": 5}, "agents"),
        ("agents a string", {"agents": "random"}, "agents"),
        ("unknown agent", {"agents": ["grandmaster"]}, "grandmaster"),
        ("unknown env", {"envs": ["Chess-v0"]}, "Chess-v0"),
        ("seeds -1", {"seeds": [-1]}, "seeds"),
        ("seeds 2**64", {"seeds": [2**64]}, "seeds"),
        ("seeds 2**32", {"seeds": [2**32]}, "seeds"),
        ("seeds a float", {"seeds": [0.5]}, "seeds"),
        ("seeds repeated", {"seeds": [1, 1]}, "seeds"),
        ("seeds empty", {"seeds": []}, "seeds"),
        ("seeds a string", {"seeds": "0"}, "seeds"),
        ("threads 0", {"threads": 0}, "threads"),
        ("threads nan", {"threads": NAN}, "threads"),
        ("episodes a string", {"episodes": "many"}, "episodes"),
        ("budgets a list", {"budgets": [1, 2]}, "budgets"),
        ("model a number", {"model": 5}, "model"),
        ("unknown key", {"agentz": ["random"]}, "agentz"),
        ("not a mapping", ["random"], "spec"),
    ]
    cases = [
        Case(f"benchmark spec: {name}", lambda _, d=data: spec_from_mapping(d), ValueError, m) for name, data, m in rows
    ]
    cases += [
        Case("load_spec: missing file", lambda i: load_spec(i.folder / "no_spec.json"), ValueError, "no_spec.json"),
        Case(
            "load_spec: binary .json",
            lambda i: load_spec(i.file("binary_spec.json", BINARY)),
            ValueError,
            "binary_spec.json",
        ),
        Case(
            "load_spec: bad JSON",
            lambda i: load_spec(i.file("bad_spec.json", '{"seeds": [1,')),
            ValueError,
            "bad_spec.json",
        ),
        Case(
            "load_spec: bad TOML",
            lambda i: load_spec(i.file("bad_spec.toml", "seeds = [")),
            ValueError,
            "bad_spec.toml",
        ),
        Case("load_spec: .yaml", lambda i: load_spec(i.file("spec.yaml", "seeds: [1]")), ValueError, r"spec\.yaml"),
        Case(
            "load_spec: seeds -1 in a file",
            lambda i: load_spec(i.file("negative_spec.json", '{"seeds": [-1]}')),
            ValueError,
            "negative_spec.json.*seeds|seeds.*negative_spec.json",
        ),
        Case(
            "ResultsStore: binary results.json",
            lambda i: ResultsStore(_results(i, BINARY)),
            ValueError,
            r"results\.json",
        ),
        Case(
            "ResultsStore: results.json an object",
            lambda i: ResultsStore(_results(i, b'{"a": 1}')),
            ValueError,
            r"results\.json",
        ),
        Case(
            "ResultsStore: truncated results.json",
            lambda i: ResultsStore(_results(i, b'[{"agent": ')),
            ValueError,
            r"results\.json",
        ),
    ]
    return cases


def _results(inputs: Inputs, content: bytes) -> Path:
    folder = inputs.folder / "results" / str(abs(hash(content)))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_bytes(content)
    return folder


def model_and_feedback_cases() -> list[Case]:
    def unfinished_build(inputs: Inputs) -> Any:
        (inputs.folder / "cache" / "models" / "smollm2-135m-instruct").mkdir(parents=True, exist_ok=True)
        return _with_cache(inputs, lambda: model_folder("smollm2-135m-instruct"))

    def build_missing_weights(inputs: Inputs) -> Any:
        folder = inputs.folder / "cache2" / "models" / "smollm2-135m-instruct"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MARKER).write_text("{}")
        return _with_cache(inputs, lambda: model_folder("smollm2-135m-instruct"), "cache2")

    record = make_record("label", "item-1", "ann", prompt="p", completion="c", label=1)
    return [
        Case("model_folder: unknown name", lambda _: model_folder("gpt-7"), ValueError, "gpt-7"),
        Case("model_folder: unfinished build", unfinished_build, OSError, "not a finished build"),
        Case("model_folder: build without weights", build_missing_weights, OSError, r"model\.safetensors"),
        Case("check_record: not a dict", lambda _: check_record([1]), ValueError, "JSON object"),
        Case("check_record: bad type", lambda _: check_record({**record, "type": "vote"}), ValueError, "'type'"),
        Case("check_record: label 2", lambda _: check_record({**record, "label": 2}), ValueError, "'label'"),
        Case(
            "check_record: score nan",
            lambda _: check_record(make_record("score", "i", "a", prompt="p", completion="c", score=NAN)),
            ValueError,
            "'score'",
        ),
        Case(
            "append_record: bad record refused",
            lambda i: append_record(i.folder / "feedback" / "refused.jsonl", {**record, "label": "yes"}),
            ValueError,
            "'label'",
        ),
        Case(
            "read_completions: missing file",
            lambda i: read_completions(i.folder / "no_completions.jsonl", "label"),
            FileNotFoundError,
            "no_completions",
        ),
    ]


def _with_cache(inputs: Inputs, call: Callable[[], Any], name: str = "cache") -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TEXT_ENVS_CACHE", str(inputs.folder / name))
        return call()


CASES = [
    *text_env_cases(),
    *tictactoe_cases(),
    *shaping_cases(),
    *parse_shaping_cases(),
    *config_cases(),
    *checkpoint_cases(),
    *reward_model_cases(),
    *benchmark_cases(),
    *model_and_feedback_cases(),
]
TRIED: set[str] = set()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tokenizer, reference_model, one_torch_thread) -> Inputs:
    inputs = Inputs(tmp_path_factory.mktemp("bad_inputs"), tokenizer, reference_model)
    env = TextGenerationVectorEnv(2, tokenizer=tokenizer, reward_model=lexicon_sentiment_reward, max_new_tokens=2)
    trainer = TextPPO(env, reference_model, TextPPOConfig(ppo_epochs=1, minibatch_size=2), device="cpu")
    trainer.learn(iterations=1)
    trainer.save(inputs.folder / "checkpoint")
    inputs.files["checkpoint"] = inputs.folder / "checkpoint"
    inputs.files["checkpoint_env"] = env
    return inputs


def test_the_table_has_distinct_names():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_refused_by_name(case: Case, inputs: Inputs):
    TRIED.add(case.name)
    with pytest.raises(case.error, match=case.match):
        case.call(inputs)


def test_the_good_checkpoint_loads(inputs: Inputs):
    """The undamaged checkpoint the corrupt copies come from loads, so the rows above fail for their damage."""
    TextPPO.load(inputs.files["checkpoint"], env=inputs.files["checkpoint_env"]).close()


def test_corrupt_feedback_lines_are_reported_by_file_and_line(inputs: Inputs):
    record = make_record("label", "item-1", "ann", prompt="p", completion="c", label=1)
    lines = [
        json.dumps(record).encode(),
        b"{not json",
        BINARY_LINE,
        json.dumps({**record, "label": 7}).encode(),
        json.dumps(record)[:25].encode(),  # a torn write
    ]
    path = inputs.file("feedback/corrupt.jsonl", b"\n".join(lines) + b"\n")
    log = read_feedback(path)
    TRIED.add("read_feedback: corrupt lines")
    assert log.records == [record]
    assert [problem.split(": ")[0] for problem in log.problems] == [f"{path}:{n}" for n in (2, 3, 4, 5)]


def test_corrupt_completion_lines_are_reported_by_file_and_line(inputs: Inputs):
    good = {"prompt": "p", "completion": "c"}
    path = inputs.file(
        "completions/corrupt.jsonl",
        b"\n".join([json.dumps(good).encode(), BINARY_LINE, b'{"prompt": 3}']) + b"\n",
    )
    items, problems = read_completions(path, "label")
    TRIED.add("read_completions: corrupt lines")
    assert len(items) == 1
    assert [problem.split(": ")[0] for problem in problems] == [f"{path}:2", f"{path}:3"]


@pytest.fixture(scope="module", autouse=True)
def report_inputs_tried():
    """The figure for the README, printed after the file's tests (``pytest -s`` shows it)."""
    yield
    print(f"\ntried {len(TRIED)} bad inputs of {len(CASES) + 2} in the table")
