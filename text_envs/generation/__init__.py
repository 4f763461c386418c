"""TextGeneration-v0: the LLM's context window as the state, the next token as the action.

:class:`TextGenerationEnv` (one episode at a time) and :class:`TextGenerationVectorEnv` (a batch in
lock-step) share one :class:`GenerationTask` (tokenizer, prompts, reward model, limits and spaces);
:func:`load_prompts` reads prompt lists, JSONL files and datasets; :class:`PromptFormat` turns prompts into
ids, plain or through the tokenizer's chat template (``prompt_format="chat"``).
"""

from text_envs.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "GenerationTask": "text_envs.generation.task",
        "PromptFormat": "text_envs.generation.prompt_format",
        "TextGenerationEnv": "text_envs.generation.env",
        "TextGenerationVectorEnv": "text_envs.generation.vector_env",
        "load_prompts": "text_envs.generation.prompts",
    },
)
