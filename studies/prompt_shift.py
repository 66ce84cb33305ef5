"""Where a fine-tuned classifier's skill sits: the same checkpoint asked with EMT's fine-tuning question and
with the EMT prompt, and linear probes of its hidden state at the answer position (docs/results.md,
"Forgetting"; recipe 4's diagnosis: docs/results-history.md, "Why animals stays low").

    python studies/prompt_shift.py runs/full/epoch-3 data/animals

For every held-out image of DATA it reads the model's next-token distribution at the position where the
label begins, restricted to the labels' first tokens (so generation and formatting play no part), under
(a) the question the training records carry ("What is the object in the image?") and (b) the EMT prompt
the evaluation records carry (the same question plus "Please only answer a single object in …"). Then it
fits a logistic regression on the hidden state of that position, layer by layer, over DATA's training
images (question form) and scores it on the held-out ones: how much of the class the decoder carries
there, whatever its head does with it.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from mfcli.data.prompts import train_answer
from mfcli.models.load import load_mllm
from mfcli.train.data import Batcher, Example


def records(data: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (data / f"{split}.jsonl").read_text().splitlines() if line.strip()]


def at_label(model, batcher: Batcher, examples: list[Example], batch: int = 64) -> dict:
    """Logits and every layer's hidden state at the position that predicts the label's first token."""
    ref, other = examples[0], next(e for e in examples if e.answer != examples[0].answer)
    a, b = (batcher([e])["labels"][0] for e in (ref, other))
    a, b = a[a != -100], b[b != -100]
    k = next(i for i in range(min(len(a), len(b))) if a[i] != b[i])  # the answer's first label token
    out: dict = {}
    with torch.inference_mode():
        for i in range(0, len(examples), batch):
            inputs = batcher(examples[i:i + batch])
            labels = inputs.pop("labels")
            o = model(**inputs, output_hidden_states=True)
            for r in range(labels.shape[0]):
                p = (labels[r] != -100).nonzero().flatten()[k] - 1  # position t predicts token t+1
                out.setdefault("logits", []).append(o.logits[r, p].float().numpy())
                for layer, h in enumerate(o.hidden_states):
                    out.setdefault(layer, []).append(h[r, p].float().numpy())
    return {key: np.stack(v) for key, v in out.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("data", type=Path, help="a prepared classification task (`mfcli prepare`)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    loaded = load_mllm(args.model, device=args.device)
    model, batcher = loaded.model.eval(), Batcher(loaded.processor)
    train, held_out = records(args.data, "train"), records(args.data, "eval")
    question = train[0]["conversations"][0]["value"]  # "What is the object in the image? <image>"
    noun = question.split()[3]
    labels = held_out[0]["labels"]
    first = [loaded.processor.tokenizer(" " + lb, add_special_tokens=False)["input_ids"][0] for lb in labels]
    if len(set(first)) < len(labels):
        raise SystemExit("two labels share their first token; this probe needs them distinct")

    def examples(recs, prompt=None):
        return [Example(r["id"], args.data / r["image"], prompt(r) if prompt else question,
                        train_answer(noun, r["label"])) for r in recs]

    truth = np.array([r["label"] for r in held_out])
    print(f"{args.model} on {args.data.name}: {len(train)} training, {len(held_out)} held-out images")
    for name, prompt in (("fine-tuning question", None), ("EMT prompt", lambda r: r["prompt"])):
        logits = at_label(model, batcher, examples(held_out, prompt))["logits"][:, first]
        acc = np.mean(np.array(labels)[logits.argmax(1)] == truth)
        print(f"  head, {name}: {100 * acc:.1f} %")
    fit, score = at_label(model, batcher, examples(train)), at_label(model, batcher, examples(held_out))
    y = [r["label"] for r in train]
    for layer in [k for k in fit if k != "logits"]:
        clf = LogisticRegression(max_iter=3000).fit(fit[layer], y)
        print(f"  probe, hidden state after layer {layer} (0 = embeddings): {100 * clf.score(score[layer], truth):.1f} %")


if __name__ == "__main__":
    main()
