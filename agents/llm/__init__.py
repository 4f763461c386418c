"""The LM plumbing every text policy shares.

- :mod:`~text_envs_agents.llm.incremental`, :mod:`~text_envs_agents.llm.gpt2_decoding`: fast cached decoding.
- :mod:`~text_envs_agents.llm.sampling`: token sampling and plain completions.
- :mod:`~text_envs_agents.llm.rollout`: batched episodes and teacher-forced log-probs.
- :mod:`~text_envs_agents.llm.model`: LoRA adapters, the value head, the token-space check.
- :mod:`~text_envs_agents.llm.evaluation`: one evaluation of text policies.
"""
