"""stable-baselines3 integration: a causal LM as an ``ActorCriticPolicy`` and the RLHF recipe around it."""

from text_envs.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "EpisodeScoreCurve": "text_envs_agents.sb3.callbacks",
        "LMActorCriticPolicy": "text_envs_agents.sb3.policy",
        "send_logprobs_to": "text_envs_agents.sb3.policy",
        "SB3A2CSettings": "text_envs_agents.sb3.rlhf",
        "SB3PPOSettings": "text_envs_agents.sb3.rlhf",
        "make_rlhf_vec_env": "text_envs_agents.sb3.rlhf",
        "train_sb3_rlhf": "text_envs_agents.sb3.rlhf",
    },
)
