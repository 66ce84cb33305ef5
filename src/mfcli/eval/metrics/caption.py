"""Caption metrics from the COCO caption evaluation code (`pycocoevalcap`, Chen et al. 2015), the
implementation Model Tailor's Flickr30k CIDEr and lmms-eval's caption tasks use:

- CIDEr-D (Vedantam et al. 2015; pycocoevalcap's `Cider` is the -D variant: n-grams 1-4, tf-idf weights
  whose document frequencies come from the *references of the whole evaluated set*, clipped counts, a
  Gaussian length penalty σ = 6, ×10). It is a corpus metric: an image's score depends on every other
  image's references, so it is computed once per task over all of that task's records;
- BLEU-4 (corpus level, pycocoevalcap's `Bleu(4)`), ROUGE-L (pycocoevalcap's `Rouge`, mean over images).

One departure, named: pycocoevalcap tokenises with the Stanford PTB tokenizer, a Java program. mfcli's
default path needs no Java, so `tokenize` below does in Python what that step does to plain English
captions — lower-case, split off punctuation and clitics ("dog's" → "dog 's"), drop the punctuation
tokens PTBTokenizer drops. METEOR and SPICE also need Java and are not computed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mfcli.errors import MfcliError

# what pycocoevalcap's PTBTokenizer removes after tokenising (its PUNCTUATIONS list)
PTB_PUNCTUATION = {"''", "'", "``", "`", "-lrb-", "-rrb-", "-lcb-", "-rcb-", ".", "?", "!", ",", ":", "-", "--",
                   "...", ";"}
# PTB's splits: "don't" → "do n't", "dog's" → "dog 's", "t-shirt" stays whole, "..." and "--" are tokens
_TOKEN = re.compile(r"\w+(?=n't\b)|n't\b|'\w+|\w+(?:-\w+)*|\.\.\.|--|[^\w\s]")


def tokenize(text: str) -> str:
    words = []
    for w in _TOKEN.findall(" ".join(text.lower().split())):
        if w not in PTB_PUNCTUATION and w not in ("(", ")", "[", "]", "{", "}", '"'):
            words.append(w)
    return " ".join(words)


def _library():
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError:
        raise MfcliError("caption metrics need the COCO caption evaluation code (pycocoevalcap).",
                         "Install it with `pip install 'mfcli[caption]'`.") from None
    return Bleu, Cider, Rouge


def caption_scores(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """Corpus CIDEr-D, BLEU-4 and ROUGE-L of `outputs[i]` against `references[i]`, with each image's own
    CIDEr-D and ROUGE-L (their means are the corpus figures). An empty output scores 0."""
    if len(outputs) != len(references) or not outputs:
        raise ValueError("caption_scores needs one list of references per output, and at least one output")
    Bleu, Cider, Rouge = _library()
    gts = {i: [tokenize(r) for r in refs] for i, refs in enumerate(references)}
    res = {i: [tokenize(o or "")] for i, o in enumerate(outputs)}
    cider, cider_each = Cider().compute_score(gts, res)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)  # verbose=1 would print its n-gram counts
    rouge, rouge_each = Rouge().compute_score(gts, res)
    return {"cider": float(cider), "bleu4": float(bleu[3]), "rouge_l": float(rouge),
            "cider_each": [float(x) for x in cider_each], "rouge_l_each": [float(x) for x in rouge_each]}
