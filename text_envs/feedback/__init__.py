"""Human feedback on completions: durable JSONL records (labels, comparisons, scores) and a terminal labeller.

:mod:`text_envs.feedback.records` defines the record format and its append-only, fsynced writes;
:mod:`text_envs.feedback.labelling` asks a person (or a scripted annotator) for judgements.
"""

from text_envs.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "FeedbackLog": "text_envs.feedback.records",
        "append_record": "text_envs.feedback.records",
        "read_feedback": "text_envs.feedback.records",
        "label_items": "text_envs.feedback.labelling",
        "read_completions": "text_envs.feedback.labelling",
    },
)
