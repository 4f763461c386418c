"""Reward models: one protocol, batched ``(prompts, completions) -> one float per completion``.

- :mod:`~text_envs.rewards.protocol`: the :class:`RewardModel` protocol and the one score validation.
- :mod:`~text_envs.rewards.trained`: reward models trained by this package (the shipped default).
- :mod:`~text_envs.rewards.training`: training them from labels and comparisons.
- :mod:`~text_envs.rewards.classifier`: a Hugging Face sequence classifier as a reward model.
- :mod:`~text_envs.rewards.human`: a person at the terminal as a reward model.
- :mod:`~text_envs.rewards.lexicon`: the rule-based sentiment score, the default task's gold evaluator.
"""

from text_envs.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "RewardModel": "text_envs.rewards.protocol",
        "CallableRewardModel": "text_envs.rewards.protocol",
        "check_scores": "text_envs.rewards.protocol",
        "TrainedRewardModel": "text_envs.rewards.trained",
        "default_reward_model": "text_envs.rewards.trained",
        "load_reward_model": "text_envs.rewards.trained",
        "train_reward_model": "text_envs.rewards.training",
        "ClassifierRewardModel": "text_envs.rewards.classifier",
        "HumanReward": "text_envs.rewards.human",
        "lexicon_sentiment_reward": "text_envs.rewards.lexicon",
    },
)
