"""The text-only conversations of smol's instruction tuning (recipe 2): SmolLM2's own answers to
questions that `facts` does not ask.

LLaVA-1.5 mixes 40K text-only ShareGPT conversations into its visual instruction tuning so the language
model keeps conversing as it did; recipe 1, which had none, left `smol` answering `facts` with one word,
often the wrong one (21.6 % against SmolLM2's 58.8 %; docs/results.md). No conversation corpus is
reachable offline, so the conversations are the language model's own (self-distillation, as in
Learning without Forgetting): each prompt below is asked of SmolLM2 before any training, greedily, and
its answer — whatever it states — becomes the target. Nothing the language model did not already say
enters; what the mixture keeps is how it answers a question without an image, including in LLaVA-1.5's
short-answer form ("… Answer the question using a single word or phrase."), the form `facts` and
scene-vqa share.

The prompts are disjoint from `facts`: their subject words are none of the words of `facts`' questions
and answers (checked here, and by tests/test_smol.py), and their forms are others (what a thing is used
for, what a job does, a word's synonym, a sentence using a word), so `facts` measures what survives
rather than what was rehearsed.
"""

from __future__ import annotations

import re

from mfcli.data.prompts import vqa_prompt

OBJECTS = ("hammer", "ladder", "pencil", "umbrella", "bicycle", "candle", "blanket", "bucket", "kettle",
           "mirror", "wallet", "pillow", "spoon", "bottle", "helmet", "compass", "lantern", "rope",
           "shovel", "telescope", "thermometer", "microscope", "calculator", "backpack", "broom", "needle",
           "sponge", "stapler", "magnet", "envelope", "carpet", "saucepan", "toothbrush", "microphone")
ANIMALS = ("frog", "eagle", "dolphin", "rabbit", "tiger", "penguin", "snake", "camel", "owl", "turtle",
           "squirrel", "shark", "parrot", "lizard", "bear", "fox", "deer", "ant", "butterfly", "octopus",
           "kangaroo", "zebra", "giraffe", "elephant", "crab", "hedgehog", "bat", "swan", "monkey", "salmon")
PROFESSIONS = ("farmer", "nurse", "baker", "carpenter", "plumber", "librarian", "firefighter", "dentist", "chef",
               "painter", "mechanic", "scientist", "lawyer", "architect", "journalist", "gardener", "tailor",
               "cashier", "electrician", "photographer", "waiter", "judge", "sailor", "musician")
ADJECTIVES = ("quick", "angry", "tiny", "huge", "calm", "brave", "clever", "silly", "bright", "gentle", "polite",
              "lazy", "smart", "tired", "noisy", "simple", "strange", "famous", "honest", "tasty", "pretty",
              "busy", "proud", "curious")
FOODS = ("bread", "pizza", "soup", "salad", "cheese", "butter", "jam", "pancakes", "chocolate", "yogurt",
         "pasta", "sushi", "omelette", "lemonade", "popcorn", "tea", "coffee", "porridge", "curry", "dumplings")

# (subjects, form, asked in LLaVA-1.5's short-answer form): `{a}` is the subject with its article
# ("an owl"), `{w}` the bare word
FORMS = (
    (OBJECTS, "What is {a} used for?", True),
    (OBJECTS, "Describe {a} in one sentence.", False),
    (OBJECTS, "Where would you usually find {a}?", True),
    (ANIMALS, "What kind of animal is {a}?", True),
    (ANIMALS, "Describe {a} in one sentence.", False),
    (ANIMALS, "Where does {a} live?", True),
    (PROFESSIONS, "What does {a} do?", True),
    (PROFESSIONS, "Describe the work of {a} in one sentence.", False),
    (ADJECTIVES, "What is another word for {w}?", True),
    (ADJECTIVES, "Write a sentence that uses the word {w}.", False),
    (FOODS, "What is the main ingredient of {w}?", True),
    (FOODS, "Describe {w} in one sentence.", False),
)

# the words of `facts`' questions that say what is asked, not about what: not subjects (a word that is
# also one of its subjects or answers — "in"/"out", "first"/"last", "before"/"after" — is not here)
_FORM_WORDS = frozenset("""a an the of is are on to do does you we what which who how many much called call
it its there their from for at by person known as says say""".split())


def with_article(noun: str) -> str:
    """"a hammer", "an owl"."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def facts_vocabulary() -> set[str]:
    """Every word of `facts`' questions and answers but its form words ("what", "capital", …), with each
    word's plural and singular: what a distillation prompt's subject must not be."""
    from mfcli.data.facts import facts

    words = set()
    for f in facts():
        words |= _words(f.question) | set().union(*(_words(r) for r in f.references))
    words -= _FORM_WORDS | {"capital", "opposite", "plural", "plus", "minus", "times", "color"}
    return words | {w + "s" for w in words} | {w + "es" for w in words} | {w[:-1] for w in words if w.endswith("s")}


def conversation_prompts() -> list[str]:
    """The distillation prompts, in a fixed order: every form with every subject whose words `facts`
    does not use."""
    banned = facts_vocabulary()
    out = []
    for subjects, form, short in FORMS:
        for subject in subjects:
            if _words(subject) & banned:
                continue
            question = form.format(a=with_article(subject), w=subject)
            out.append(vqa_prompt(question) if short else question)
    return out


def self_answers(model, processor, prompts: list[str], max_new_tokens: int, batch: int = 32
                 ) -> list[tuple[str, str]]:
    """(prompt, answer) for each prompt the model answers greedily, without an image, within
    `max_new_tokens` (an answer cut off there is dropped: trained on, its cut would teach stopping
    mid-sentence)."""
    import torch

    from mfcli.models.chat import generation_inputs

    tok = processor.tokenizer
    out = []
    for s in range(0, len(prompts), batch):
        asked = prompts[s:s + batch]
        inputs = generation_inputs(processor, None, asked)
        with torch.inference_mode():
            ids = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        new = ids[:, inputs["input_ids"].shape[1]:]
        for prompt, row in zip(asked, new):
            if (row == tok.eos_token_id).any():
                answer = tok.decode(row, skip_special_tokens=True).strip()
                if answer:
                    out.append((prompt, answer))
    return out
