"""The RLHF loop: K rounds of sample -> label -> retrain the reward model -> RL, resumable, each round on its own.

:func:`run_rlhf_loop` runs round k = 1..K in the folder ``round_k/`` of the output dir:

1. **sample** (``items.jsonl``, ``items_test.jsonl``): the current policy (round 1: the reference LM; later,
   round k-1's policy) completes ``items_per_round`` prompts drawn from the training prompts and
   ``test_items_per_round`` drawn from the held-out prompts (``compare``: two completions of each prompt).
   The files use :func:`~text_envs.feedback.labelling.read_completions`' format, so ``text-envs-label
   --completions`` reads them too.
2. **label** (``feedback.jsonl``, ``feedback_test.jsonl``): the annotator (:mod:`text_envs.feedback.annotators`)
   judges them, one durable record at a time; a person who quits stops the loop here, and the next run
   asks only about the items left.
3. **reward_model** (``reward_model/``): a reward model trained on the training records of rounds 1..k (and
   of the ``base_feedback`` files), only the annotator's own with ``only_annotator_records``; the held-out
   records of rounds 1..k (and ``base_test_feedback``) are its test set and never train it.
4. **policy** (``policy/``, a TextPPO checkpoint): ``iterations`` TextPPO iterations against that reward
   model. Round 1 starts from the reference LM; round k > 1 continues round k-1's checkpoint (its weights,
   optimizer state and β), so the policy builds on what earlier rounds taught it, as in the iterated
   loops of Christiano et al. (2017) and Stiennon et al. (2020); the KL term is always to the initial
   reference LM, never to the previous round's policy, so β keeps every round near the model the first
   labels were sampled from.
5. **evaluation** (``metrics.json``, ``samples.jsonl``): :func:`~text_envs_agents.llm.evaluation.evaluate_text_policy`
   of the policy and of the reference on every held-out prompt under this round's reward model, with the
   independent judges (VADER, the judge LM's perplexity, ...); the reward model's accuracies; the round's
   record counts.

**Resuming.** ``loop.json`` holds the loop's config, the annotator and the stages each round finished; it
is replaced atomically (temporary file, fsync, rename) after every stage. A rerun of the same config skips
finished stages, continues a half-labelled round from its feedback files (the annotator passes over what
it judged), and redoes an unfinished reward-model or RL stage from its start. A rerun with more
``rounds`` appends rounds; ``judge_lm`` and ``evaluation_samples_per_prompt`` may change too (they decide
figures, not data or models). Anything else different, another annotator, or a non-empty folder without
``loop.json`` is refused, naming what differs. An earlier round's files are never opened for writing.

:mod:`~text_envs_agents.rlhf_loop.config` holds :class:`RLHFLoopConfig`, for the command lines (it imports
neither TextPPO nor the judges); :mod:`~text_envs_agents.rlhf_loop.loop` the loop itself. Names are imported
on first use.
"""

from text_envs.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "RLHFLoopConfig": "text_envs_agents.rlhf_loop.config",
        "EVALUATION_ENVS": "text_envs_agents.rlhf_loop.loop",
        "LOOP_FILE": "text_envs_agents.rlhf_loop.loop",
        "STAGES": "text_envs_agents.rlhf_loop.loop",
        "RLHFLoop": "text_envs_agents.rlhf_loop.loop",
        "RLHFLoopResult": "text_envs_agents.rlhf_loop.loop",
        "feedback_files": "text_envs_agents.rlhf_loop.loop",
        "round_dir": "text_envs_agents.rlhf_loop.loop",
        "run_rlhf_loop": "text_envs_agents.rlhf_loop.loop",
    },
)
