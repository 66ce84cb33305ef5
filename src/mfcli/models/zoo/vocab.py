"""A word-level tokenizer for the tiny model, built locally with `tokenizers` (no download)."""

from __future__ import annotations

import re
from collections.abc import Iterable

PAD, UNK, BOS, EOS, IMAGE = "<pad>", "<unk>", "<s>", "</s>", "<image>"
SPECIALS = (PAD, UNK, BOS, EOS, IMAGE)
_WORD = re.compile(r"\w+|[^\w\s]")  # what WhitespaceSplit + Punctuation produce


def words_of(texts: Iterable[str]) -> list[str]:
    found = set()
    for text in texts:
        found.update(_WORD.findall(text.replace(IMAGE, " ")))
    return sorted(found)


def build_tokenizer(texts: Iterable[str], *, add_bos: bool, add_eos: bool):
    """A PreTrainedTokenizerFast over every word in `texts` (sorted, so the build is deterministic).

    add_bos: Llama-style `<s>` in front (the LLaVA decoder). add_eos: `</s>` at the end, where the
    CLIP text tower pools its sentence embedding.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(list(SPECIALS) + words_of(texts))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces and tidies " ." -> "."
    single = " ".join(([f"{BOS}"] if add_bos else []) + ["$A"] + ([f"{EOS}"] if add_eos else []))
    tok.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=UNK, pad_token=PAD, bos_token=BOS,
                                   eos_token=EOS, extra_special_tokens={"image_token": IMAGE},
                                   model_max_length=512)


# LLaVA-1.5's conversation form ("USER: <image>\n... ASSISTANT: ...</s>") as a Jinja chat template.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: "
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>\n{% endif %}{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %} "
    "{% else %}ASSISTANT: "
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}</s>"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
