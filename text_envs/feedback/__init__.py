"""Human feedback on completions: durable JSONL records (labels, comparisons, scores), a terminal labeller, annotators.

:mod:`text_envs.feedback.records` defines the record format and its append-only, fsynced writes;
:mod:`text_envs.feedback.labelling` asks a person for judgements; :mod:`text_envs.feedback.annotators`
says who judges a round's items: a person at the terminal or a scripted (simulated) annotator.
"""

from text_envs.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "FeedbackLog": "text_envs.feedback.records",
        "append_record": "text_envs.feedback.records",
        "read_feedback": "text_envs.feedback.records",
        "read_judgements": "text_envs.feedback.records",
        "label_items": "text_envs.feedback.labelling",
        "read_completions": "text_envs.feedback.labelling",
        "Annotator": "text_envs.feedback.annotators",
        "TerminalAnnotator": "text_envs.feedback.annotators",
        "ScriptedAnnotator": "text_envs.feedback.annotators",
        "ShortReviewAnnotator": "text_envs.feedback.annotators",
        "LongReviewAnnotator": "text_envs.feedback.annotators",
        "load_annotator": "text_envs.feedback.annotators",
    },
)
