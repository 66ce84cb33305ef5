"""tiny's tokenizer: a byte-level BPE trained locally with `tokenizers` (no download).

Byte-level means every string round-trips — a label tiny never saw (`golden_retriever`, `crème brûlée`)
is a few pieces, never `<unk>`. The merges are learnt from the built-in texts (repeated, so their words
are single tokens) and 6,000 common English words (english_words.txt), so a user's own label words
split into whole words or a few sub-words, as GPT-2's and Llama-3's byte-level BPEs split them.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

PAD, UNK, BOS, EOS, IMAGE = "<pad>", "<unk>", "<s>", "</s>", "<image>"
SPECIALS = (PAD, UNK, BOS, EOS, IMAGE)
VOCAB_SIZE = 4096  # 256 bytes + merges: every built-in word and ~2,000 of the common words are one token
BUILTIN_REPEATS = 50  # weight of the built-in texts against the word list when merges are counted


def english_words() -> list[str]:
    text = resources.files("mfcli.zoo").joinpath("english_words.txt").read_text(encoding="utf-8")
    return [w for w in text.split("\n") if w and not w.startswith("#")]


def build_tokenizer(texts: Iterable[str], *, add_bos: bool, add_eos: bool, vocab_size: int = VOCAB_SIZE,
                    extra_specials: dict[str, str] | None = None):
    """A PreTrainedTokenizerFast, deterministic for the same texts.

    add_bos: Llama-style `<s>` in front (the LLaVA decoder). add_eos: `</s>` at the end, where the
    CLIP text tower pools its sentence embedding. extra_specials: a family's own markers by attribute name
    (Qwen2-VL's {"image_token": "<|image_pad|>", "im_end_token": "<|im_end|>", …}), never split.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    named = {"image_token": IMAGE, **(extra_specials or {})}
    texts = sorted(set(texts))  # the trainer counts words; a fixed order keeps ties (and merges) stable
    # ByteLevel with add_prefix_space=False: the decoded text is exactly the input (GPT-2 adds a space)
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    specials = list(SPECIALS) + [t for t in named.values() if t not in SPECIALS]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    # word-list entries with a leading space (how a word appears mid-sentence), counted as Zipf's law has
    # them (rank r ~ n/r times): merges then follow real frequency, whole common words before rare pieces
    words = english_words()
    corpus = [" " + w for r, w in enumerate(words, 1) for _ in range(max(1, round(len(words) / r)))]
    corpus += [t.replace(IMAGE, " ") for t in texts] * BUILTIN_REPEATS
    tok.train_from_iterator(corpus, trainer=trainer, length=len(corpus))
    ids = {t: tok.token_to_id(t) for t in SPECIALS}
    single = " ".join(([BOS] if add_bos else []) + ["$A"] + ([EOS] if add_eos else []))
    tok.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[(BOS, ids[BOS]), (EOS, ids[EOS])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=UNK, pad_token=PAD, bos_token=BOS,
                                   eos_token=EOS, extra_special_tokens=named, model_max_length=512)


# LLaVA-1.5's conversation form with the image moved next to the answer: "USER: ...\n<image> ASSISTANT: ...</s>".
# Why not LLaVA's "USER: <image>\n...": a 2-layer decoder reads the image through attention that depends on
# the distance between answer and image. With the image first, that distance is the instruction's
# length, so a fine-tune through one question (EMT's records) learnt to read the image at that one
# distance, and the longer EMT prompt lost most of it: `full` on animals read 49.4 ± 5.0 % under the EMT
# prompt against 70.4 % under the training question (recipe 4). With the image last the distance is the
# same under every instruction: 66.7 ± 1.1 % under the EMT prompt (recipe 5; docs/results.md). EMT's own
# fine-tuning records put `<image>` after the question, too.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: "
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}\n<image>{% endif %}{% endfor %} "
    "{% else %}ASSISTANT: "
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}</s>"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
