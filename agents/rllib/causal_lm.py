"""A causal LM as an RLlib RLModule for TextGeneration-v0: next-token logits as actions, a value head beside them."""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from transformers import PreTrainedModel

from text_envs.lm import check_vocabulary, load_causal_lm, positions_from_mask
from text_envs_agents.llm.incremental import NextToken
from text_envs_agents.llm.model import check_token_spaces, value_head


class CausalLMTorchRLModule(TorchRLModule, ValueFunctionAPI):
    """A Hugging Face causal LM as RLlib's PPO actor-critic: the LM is the actor, a linear head on it the critic.

    The RLlib counterpart of :class:`agents.LMActorCriticPolicy` (stable-baselines3), with the same
    conventions.

    ## Spaces
    A causal TextGeneration-v0 env with ``observation_mode="tokens"``: ``Dict(input_ids,
    attention_mask)`` of left-padded contexts (the newest token always last) and
    ``Discrete(vocab_size)`` actions. The LM must share the env's tokenizer; extra logits of a larger
    (padded) LM vocabulary are dropped.

    ## Actor: logits at the last position only
    The transformer body (``model.base_model``) reads each context, with the leading columns that
    are padding in every row skipped and position ids counting real tokens from 0 (as
    :func:`text_envs.lm.positions_from_mask` does). Only the final hidden state at the last
    position, the newest token, goes through the LM head: one ``hidden -> vocab`` product per row,
    not one per position. The result (float32, natural-log units before the softmax) equals the
    LM's own last-position logits from a full forward, and is RLlib's ``Categorical`` input, so
    ``log π(a|s)`` is the LM's log-softmax of the token (nats, per token), at temperature 1.

    The LM head must be the whole logit computation, as in GPT-2, Llama, Mistral or Qwen; a model
    whose config scales or soft-caps logits after it (``final_logit_softcapping``, ``logit_scale``,
    ``logits_scaling``) is refused with ``ValueError``.

    ## Critic
    ``nn.Linear(hidden_size, 1)`` on the same last hidden state, initialised to zero so the first
    values are 0. It shares the LM trunk, as RLHF's PPO does (Ziegler et al. 2019): the value loss
    also trains the LM. The training forward returns the hidden state as ``Columns.EMBEDDINGS``, so
    PPO's value loss reuses it instead of running the LM again; ``compute_values`` on a batch alone
    (RLlib's advantage estimation, whose values are targets and never differentiated) runs the LM
    without gradients.

    ## Dropout
    Off in the LM, in training too (``train()`` keeps the LM in eval mode): PPO's probability ratio
    compares the policy that sampled an action with the one being updated, and dropout noise would
    make them differ from the first minibatch on.

    ## Cost
    RLlib's env runners call the module with observations only, so every sampling step re-reads
    the whole context: no KV cache across steps (the SB3 policy and :class:`agents.TextPPO` have one).

    ## Device
    RLlib owns placement, so the module takes no ``device``: it is built on the CPU, and RLlib moves
    it (the LM and the value head) where it runs: a learner's GPU with
    ``config.learners(num_gpus_per_learner=1)``, an env runner's CPU otherwise. RLlib hands the
    module its batches on that device; every tensor the module makes (the trimmed ids and mask,
    the position ids) is computed from them, so it stays there.

    ## ``model_config``
    - ``model_name_or_path``: registered name (:mod:`text_envs.models`, e.g.
      ``"smollm2-135m-instruct"``), Hub name or local directory of the causal LM; absent or
      ``None``: the embedded default LM (:func:`text_envs.lm.load_causal_lm`; ``trust_remote_code``
      stays off).
    """

    def setup(self) -> None:
        check_token_spaces(self.observation_space, self.action_space, type(self).__name__)
        self.lm = load_causal_lm((self.model_config or {}).get("model_name_or_path"))
        _check_plain_lm_head(self.lm)
        check_vocabulary(self.lm, self.action_space.n, "the policy LM")
        self.value_head = value_head(self.lm.get_output_embeddings().weight.shape[1])

    def train(self, mode: bool = True) -> CausalLMTorchRLModule:
        super().train(mode)
        self.lm.eval()  # dropout off in training too (see the class docstring)
        return self

    def next_token(self, observations: dict[str, torch.Tensor]) -> NextToken:
        """Next-token logits ``(batch, n)`` (float32, sliced to the action space) and last hidden states."""
        hidden = self._last_hidden(observations)
        logits = self.lm.get_output_embeddings()(hidden)[:, : self.action_space.n]
        return NextToken(logits.float(), hidden)

    def _last_hidden(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """The body's final hidden state ``(batch, hidden_size)`` at the last (newest) position of each context."""
        input_ids, attention_mask = observations["input_ids"].long(), observations["attention_mask"].long()
        kept = max(int(attention_mask.sum(dim=1).max()), 1)
        input_ids, attention_mask = input_ids[:, -kept:], attention_mask[:, -kept:]
        output = self.lm.base_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions_from_mask(attention_mask),
            use_cache=False,
        )
        return output.last_hidden_state[:, -1]

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self.next_token(batch[Columns.OBS]).logits}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        logits, hidden = self.next_token(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: logits, Columns.EMBEDDINGS: hidden}

    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> torch.Tensor:
        """Values ``(batch,)``: from ``embeddings`` of a training forward when given, else a gradient-free LM pass."""
        if embeddings is None:
            with torch.no_grad():
                embeddings = self._last_hidden(batch[Columns.OBS])
        return self.value_head(embeddings.float()).squeeze(-1)


def _check_plain_lm_head(model: PreTrainedModel) -> None:
    config = model.config
    softcapping = getattr(config, "final_logit_softcapping", None)
    scales = {name: getattr(config, name, None) for name in ("logit_scale", "logits_scaling")}
    scales = {name: value for name, value in scales.items() if value is not None and value != 1}
    if softcapping is not None or scales:
        raise ValueError(
            f"{type(model).__name__} transforms its logits after the LM head (final_logit_softcapping="
            f"{softcapping}, {scales}); CausalLMTorchRLModule applies only the head to the last hidden state"
        )
