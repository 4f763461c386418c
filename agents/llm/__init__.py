"""The LM plumbing every text policy shares.

- :mod:`~text_envs_agents.llm.incremental`: next-token outputs of env observations, reusing a KV cache across calls.
- :mod:`~text_envs_agents.llm.slot_decoding`: which slot decoder (preallocated per-row KV cache) runs a model;
  :mod:`~text_envs_agents.llm.kv_slots` holds the slots and the decoding loop,
  :mod:`~text_envs_agents.llm.gpt2_decoding` and :mod:`~text_envs_agents.llm.llama_decoding` (Llama, Qwen2, Mistral)
  each architecture's block math.
- :mod:`~text_envs_agents.llm.sampling`: token sampling and plain completions.
- :mod:`~text_envs_agents.llm.rollout`: batched episodes and teacher-forced log-probs.
- :mod:`~text_envs_agents.llm.model`: LoRA adapters, the value head, the token-space check.
- :mod:`~text_envs_agents.llm.evaluation`: one evaluation of text policies.
"""
