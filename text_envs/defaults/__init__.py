"""The embedded defaults: a small pretrained LM and tokenizer, prompts, and the corpus they come from.

Everything here is built by ``scripts/build_default_lm.py`` from :mod:`text_envs.defaults.corpus`
(a seeded grammar of short product and venue reviews written for this project, MIT-licensed like
the rest of it), and shipped as safetensors and JSON so that the envs work offline.
"""

from pathlib import Path

DEFAULTS_DIR = Path(__file__).resolve().parent
DEFAULT_LM_DIR = DEFAULTS_DIR / "lm"
"""Tokenizer and GPT-2-architecture causal LM (``from_pretrained`` directory)."""
DEFAULT_PROMPTS_TRAIN = DEFAULTS_DIR / "prompts_train.jsonl"
DEFAULT_PROMPTS_TEST = DEFAULTS_DIR / "prompts_test.jsonl"
DEFAULT_FEEDBACK_DIR = DEFAULTS_DIR / "feedback"
"""Labelled examples and comparisons for the default task, with their labelling guidelines."""
DEFAULT_REWARD_MODEL_DIR = DEFAULTS_DIR / "reward_model"
"""The default reward model: a head on the packaged MiniLM encoder, trained on both feedback rounds of
``DEFAULT_FEEDBACK_DIR`` (round 2 labels the failures of policies trained against the round-1 model)."""
ROUND1_REWARD_MODEL_DIR = DEFAULTS_DIR / "reward_model_round1"
"""The round-1 reward model: the same head trained on round 1 alone (the embedded LM's and hand-written
completions), kept to report beside the default and to train against for comparison."""
