"""A causal LM as a stable-baselines3 actor-critic policy for TextGeneration-v0: next-token logits as actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule

from text_envs.lm import check_vocabulary, load_causal_lm
from text_envs_agents.llm.incremental import IncrementalLM, NextToken
from text_envs_agents.llm.model import check_token_spaces, value_head, with_lora
from text_envs_agents.llm.sampling import sample_tokens

LogprobCallback = Callable[[np.ndarray], None]
"""Receives ``log π(a_t|s_t)`` (nats, one float per env) of the actions a rollout step just sampled."""


class LMActorCriticPolicy(ActorCriticPolicy):
    """SB3 ``ActorCriticPolicy`` whose actor is a Hugging Face causal LM and whose critic is a value head on it.

    ``PPO(LMActorCriticPolicy, env, policy_kwargs=dict(model_name_or_path="gpt2"))`` (or ``A2C``) fine-tunes
    the LM with the stock algorithm: no forked ``collect_rollouts``.

    ## Spaces
    A causal TextGeneration-v0 env with ``observation_mode="tokens"``: ``Dict(input_ids,
    attention_mask)`` of left-padded contexts and ``Discrete(vocab_size)`` actions. The LM must
    share the env's tokenizer; a model whose vocabulary is larger (padded embeddings) has its extra
    logits ignored.

    ## Actor and critic
    - Actor: the LM's next-token logits at the last position are the logits of SB3's
      ``CategoricalDistribution`` (temperature 1, no top-k), so ``log_prob`` is the LM's own
      ``log_softmax`` of the chosen token (nats, per token).
    - Critic (``value_net``): one ``nn.Linear(hidden_size, 1)`` on the LM's final hidden state (after
      its last norm) at the last position, initialised to zero so the first values are 0 and the
      first value-loss gradients leave the LM alone. It shares the LM trunk, as in RLHF's PPO
      (Ziegler et al. 2019): the value loss (``vf_coef``) also trains the LM.
    - Dropout stays off in the LM (LoRA's included), in training too: PPO's probability ratio compares the policy that
      sampled an action with the one being updated, and dropout noise would make them differ from the
      first minibatch on.
    - SB3's features extractor is its parameter-free default and no ``mlp_extractor`` or
      ``action_net`` is built; ``net_arch``, ``activation_fn`` and ``ortho_init`` are accepted and
      ignored. The optimizer gets the trainable parameters: the LM (or its LoRA adapters) and the value head.

    ## Device
    SB3 places the policy: ``PPO(LMActorCriticPolicy, env, device="auto"|"cpu"|"cuda")`` builds it on
    the CPU and moves it (LM, LoRA adapters, value head) with ``.to(device)``; ``policy.device`` is
    its parameters' device. Everything the policy computes follows the observations SB3 hands it,
    which SB3 puts on that device once per step (``obs_as_tensor``): the KV cache is made from the
    LM's own outputs, sampling draws on the logits' device, and no tensor goes back to the CPU in
    ``forward`` but the sampled tokens' log-probs for ``logprob_callback`` (once per step, for the
    whole batch, as the env needs them; IncrementalLM reads a few scalars per call to pick its
    path). A move after the cache was filled is seen by IncrementalLM's parameter check and
    refills it.

    ## Speed
    Rollout calls (``forward``, ``predict``, ``predict_values``, ``get_distribution``, under SB3's
    ``no_grad``) go through :class:`~text_envs_agents.llm.incremental.IncrementalLM`, which feeds only the newest
    token of each env whose episode goes on and recomputes the rows that restarted. Training calls
    (``evaluate_actions``, random minibatches) run full forwards with gradients. Observations from
    SB3's rollout buffer are float32 and are turned back into ids with ``.long()``.

    ## Feeding a KL penalty
    :meth:`action_log_prob` gives ``log π(a|s)`` per token for any batch. To hand each sampled
    token's log-prob to :class:`text_envs.shaping.KLPenalty` *before* the env steps, set
    ``policy.logprob_callback``: ``forward`` (what ``collect_rollouts`` calls just before
    ``env.step``) calls it with the log-probs of the actions it sampled. With a ``VecEnv`` of
    ``KLPenalty``-wrapped envs::

        model = PPO(LMActorCriticPolicy, vec_env)
        model.policy.logprob_callback = send_logprobs_to(vec_env)  # env i gets set_policy_logprob(logprob[i])
        model.learn(10_000)

    ## Arguments (``policy_kwargs``)
    - ``model_name_or_path``: registered name (:mod:`text_envs.models`, e.g.
      ``"smollm2-135m-instruct"``), Hub name or local directory of the causal LM; ``None`` the
      embedded default LM. Loaded with :func:`text_envs.lm.load_causal_lm`; ``PPO.load`` loads it
      again and then the saved weights over it.
    - ``use_cache`` (True): reuse the KV cache across rollout steps; False re-reads every context.
    - ``lora``: ``None``, or keyword arguments of ``peft.LoraConfig`` (e.g. ``{"r": 8, "lora_alpha":
      16}``): only the LoRA adapters and the value head are trained. Needs ``pip install peft``.
    - ``trust_remote_code`` (False): passed to ``from_pretrained``.
    - Everything else goes to ``ActorCriticPolicy`` (``optimizer_class``, ``optimizer_kwargs``, ...).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        model_name_or_path: str | None = None,
        use_cache: bool = True,
        lora: dict[str, Any] | None = None,
        trust_remote_code: bool = False,
        **kwargs: Any,
    ):
        check_token_spaces(observation_space, action_space, type(self).__name__)
        # Plain attributes, set before ActorCriticPolicy.__init__ calls _build; SB3 pickles them on save.
        self.model_name_or_path = None if model_name_or_path is None else str(model_name_or_path)
        self.use_cache = bool(use_cache)
        self.lora = None if lora is None else dict(lora)
        self.trust_remote_code = bool(trust_remote_code)
        self.logprob_callback: LogprobCallback | None = None
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        model = load_causal_lm(self.model_name_or_path, trust_remote_code=self.trust_remote_code)
        if self.lora is not None:
            model = with_lora(model, self.lora)
        check_vocabulary(model, self.action_space.n, "the policy LM")
        self.lm = IncrementalLM(model, use_cache=self.use_cache).eval()
        self.value_net = value_head(model.get_output_embeddings().weight.shape[1])
        trainable = [p for p in self.parameters() if p.requires_grad]
        self.optimizer = self.optimizer_class(trainable, lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            model_name_or_path=self.model_name_or_path,
            use_cache=self.use_cache,
            lora=self.lora,
            trust_remote_code=self.trust_remote_code,
        )
        return data

    def set_training_mode(self, mode: bool) -> None:
        super().set_training_mode(mode)
        self.lm.eval()  # dropout off in training too (see the class docstring)
        if mode:  # an update is about to change the weights (IncrementalLM's parameter check would catch it too)
            self.lm.reset_cache()

    def next_token(self, obs: PyTorchObs, use_cache: bool | None = None) -> NextToken:
        """The LM's next-token logits (float32, sliced to the action space) and last hidden state for ``obs``.

        Through the KV cache unless ``use_cache=False`` (a plain full forward) or gradients are enabled.
        """
        return self._float_output(self.lm(*_ids_and_mask(obs), use_cache=use_cache))

    def _float_output(self, output: NextToken) -> NextToken:
        return NextToken(output.logits[:, : self.action_space.n].float(), output.hidden.float())

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Actions, values ``(batch, 1)`` and log-probs (nats) of the actions, as ``collect_rollouts`` expects."""
        logits, hidden = self.next_token(obs)
        values = self.value_net(hidden)
        # The distribution SB3's CategoricalDistribution would build, sampled without building it: its
        # torch.distributions checks and normalisation cost ~0.15 ms, 3% of a rollout step with the embedded LM.
        log_probs = torch.log_softmax(logits, dim=-1)
        if deterministic:
            actions = log_probs.argmax(dim=-1)
        else:
            actions = sample_tokens(log_probs)
        log_prob = log_probs.gather(1, actions[:, None]).squeeze(1)
        if self.logprob_callback is not None:
            self.logprob_callback(log_prob.detach().cpu().numpy())
        return actions.reshape((-1, *self.action_space.shape)), values, log_prob

    def evaluate_actions(
        self, obs: PyTorchObs, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Values, log-probs and entropies for a training minibatch: full forwards, with gradients."""
        logits, hidden = self._float_output(self.lm.full_forward(*_ids_and_mask(obs)))
        distribution = self.action_dist.proba_distribution(action_logits=logits)
        return self.value_net(hidden), distribution.log_prob(actions.reshape(-1)), distribution.entropy()

    def get_distribution(self, obs: PyTorchObs) -> Distribution:
        return self.action_dist.proba_distribution(action_logits=self.next_token(obs).logits)

    def predict_values(self, obs: PyTorchObs) -> torch.Tensor:
        return self.value_net(self.next_token(obs).hidden)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> torch.Tensor:
        return self.get_distribution(observation).get_actions(deterministic=deterministic)

    def action_log_prob(self, obs: PyTorchObs, actions: torch.Tensor) -> torch.Tensor:
        """``log π(a|s)`` of ``actions`` (token ids, one per row) in nats, shape ``(batch,)``: per-token log-probs."""
        logits = self.next_token(obs).logits
        return torch.log_softmax(logits, dim=-1).gather(1, actions.reshape(-1, 1).long()).squeeze(1)


def send_logprobs_to(vec_env: Any) -> LogprobCallback:
    """A ``logprob_callback`` that gives env ``i`` of an SB3 ``VecEnv`` its log-prob through ``set_policy_logprob``.

    Each env must have a :class:`text_envs.shaping.KLPenalty` in its wrapper stack (``env_method``
    finds the method through the wrappers).
    """

    def send(logprobs: np.ndarray) -> None:
        for index, logprob in enumerate(np.asarray(logprobs).reshape(-1)):
            vec_env.env_method("set_policy_logprob", float(logprob), indices=[index])

    return send


def _ids_and_mask(obs: PyTorchObs) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and mask as int64 ``(batch, L)``: SB3's rollout buffer hands them back as float32."""
    input_ids, attention_mask = obs["input_ids"], obs["attention_mask"]
    if input_ids.dim() == 1:
        input_ids, attention_mask = input_ids[None], attention_mask[None]
    return input_ids.long(), attention_mask.long()
