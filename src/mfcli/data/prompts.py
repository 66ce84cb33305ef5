"""The papers' prompts, verbatim (METHODS.md §1; EMT Appendix B.2, C.1, D.1)."""

from __future__ import annotations

from collections.abc import Sequence

LABEL_SEPARATOR = ", "  # EMT joins the label set with ", " inside the prompt


def noun_for(labels: Sequence[str]) -> str:
    """EMT asks for a 'number' on digit datasets and an 'object' everywhere else."""
    return "number" if labels and all(str(x).isdigit() for x in labels) else "object"


def emt_prompt(labels: Sequence[str], noun: str | None = None) -> str:
    """EMT Appendix C.1: the classification prompt (MNIST and CIFAR-10 strings fall out of this)."""
    noun = noun or noun_for(labels)
    return (f"What is the {noun} in the image? "
            f"Please only answer a single {noun} in {LABEL_SEPARATOR.join(labels)}.")


def train_question(noun: str) -> str:
    """EMT Appendix D.1: the human turn of a fine-tuning record."""
    return f"What is the {noun} in the image? <image>"


def train_answer(noun: str, label: str) -> str:
    """EMT Appendix D.1: 'The object is a(n) airplane.'; digit datasets answer 'The number is 8.'."""
    return f"The number is {label}." if noun == "number" else f"The {noun} is a(n) {label}."


def clip_prompt(noun: str, label: str) -> str:
    """EMT Appendix B.2: zero-shot prompts for the vision encoder baseline."""
    return f'a photo of the number: "{label}".' if noun == "number" else f"a photo of a {label}."
