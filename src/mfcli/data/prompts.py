"""The papers' prompts, verbatim (METHODS.md §1; EMT Appendix B.2, C.1, D.1), and LLaVA-1.5's response
formatting prompts for the other task kinds (Liu et al. 2023, "Improved Baselines with Visual Instruction
Tuning", Table 7), which its own VQA/caption evaluations and lmms-eval use. A leaf: text only."""

from __future__ import annotations

from collections.abc import Sequence

LABEL_SEPARATOR = ", "  # EMT joins the label set with ", " inside the prompt
IMAGE_TOKEN = "<image>"  # LLaVA's placeholder for the image in the human turn
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # multiple-choice options are lettered A, B, C, … in order


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
    return f"What is the {noun} in the image? {IMAGE_TOKEN}"


def train_answer(noun: str, label: str) -> str:
    """EMT Appendix D.1: 'The object is a(n) airplane.'; digit datasets answer 'The number is 8.'."""
    return f"The number is {label}." if noun == "number" else f"The {noun} is a(n) {label}."


def clip_prompt(noun: str, label: str) -> str:
    """EMT Appendix B.2: zero-shot prompts for the vision encoder baseline."""
    return f'a photo of the number: "{label}".' if noun == "number" else f"a photo of a {label}."


# LLaVA-1.5 Table 7: appended to short-answer VQA questions (VQAv2, GQA, OKVQA) in training and evaluation
VQA_SUFFIX = "Answer the question using a single word or phrase."
# LLaVA-1.5 Table 7 (TextCaps); also lmms-eval's Flickr30k and COCO caption prompt
CAPTION_PROMPT = "Provide a one-sentence caption for the provided image."
# LLaVA (Liu et al. 2023, Table 8): the first of its brief-description instructions
BRIEF_PROMPT = "Describe the image concisely."
# LLaVA-1.5 Table 7: multiple choice (A-OKVQA, ScienceQA, MMBench)
CHOICE_SUFFIX = "Answer with the option's letter from the given choices directly."


def vqa_prompt(question: str) -> str:
    """LLaVA-1.5's short-answer form: the question, a newline, the formatting prompt."""
    return f"{question}\n{VQA_SUFFIX}"


def choice_prompt(question: str, options: Sequence[str]) -> str:
    """LLaVA-1.5's multiple-choice form (as its ScienceQA/MMBench evaluation writes it): the question,
    one "A. option" line per option, the formatting prompt."""
    lines = [question] + [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    return "\n".join(lines + [CHOICE_SUFFIX])
