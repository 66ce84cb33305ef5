"""Where the image sits in the instruction, and what that does to a fine-tuned classifier (docs/methods.md,
recipe 5): the same checkpoint asked EMT's question and the EMT prompt with the image before the text
(LLaVA's form), after it, or between the label list and the question, by writing the conversation
directly instead of through the model's chat template.

    python studies/image_layout.py runs/r4-animals/seed-0/full/epoch-3 runs/r4-animals/data/animals

Reads greedy answers for the first --n held-out records and prints the exact-match share per layout.
"""

import argparse
import json
from pathlib import Path

import torch
from PIL import Image

from mfcli.eval.labels import exact_correct
from mfcli.models.load import load_mllm


def layouts(labels: list[str]) -> dict[str, tuple[str, str]]:
    """name → (text before the image, text after it)."""
    question = "What is the object in the image?"
    listing = "Please only answer a single object in " + ", ".join(labels) + "."
    return {"image | question": ("", question),
            "image | question list (EMT prompt)": ("", f"{question} {listing}"),
            "list | image | question": (listing, question),
            "question list | image": (f"{question} {listing}", ""),
            "question | image": (question, "")}


def conversation(before: str, after: str) -> str:
    """LLaVA-1.5's conversation form with the image wherever the layout puts it."""
    user = " ".join(x for x in (before, "<image>\n" + after if after else "<image>") if x)
    return f"USER: {user} ASSISTANT:"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("data", type=Path, help="a prepared classification task (`mfcli prepare`)")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--batch", type=int, default=50)
    args = ap.parse_args()

    loaded = load_mllm(args.model, device="cpu")
    model, processor = loaded.model, loaded.processor
    tok = processor.tokenizer
    tok.padding_side = "left"
    records = [json.loads(x) for x in (args.data / "eval.jsonl").read_text().splitlines() if x.strip()][:args.n]
    labels = records[0]["labels"]
    for name, (before, after) in layouts(labels).items():
        hits = 0
        for s in range(0, len(records), args.batch):
            batch = records[s:s + args.batch]
            images = [Image.open(args.data / r["image"]).convert("RGB") for r in batch]
            inputs = processor(text=[conversation(before, after)] * len(batch), images=images,
                               return_tensors="pt", padding=True)
            with torch.inference_mode():
                out = model.generate(**inputs, max_new_tokens=10, do_sample=False, pad_token_id=tok.pad_token_id)
            answers = tok.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            hits += sum(exact_correct(a, r["label"], labels) for a, r in zip(answers, batch))
        print(f"{name:36s} {100 * hits / len(records):5.1f} %  ({conversation(before, after)!r})", flush=True)


if __name__ == "__main__":
    main()
