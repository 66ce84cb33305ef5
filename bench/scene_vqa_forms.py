"""scene-vqa accuracy by question form, from a judged file (docs/results.md, the tiny table: which
questions tiny gets wrong).

    python bench/scene_vqa_forms.py runs/r5-animals/tiny.judged.jsonl
"""

import json
import sys
from collections import defaultdict

FORMS = {"how many": "How many shapes are there?", "colour": "What colour is the X?",
         "which shape": "Which shape is C?", "where is": "Where is the C X?"}


def form(prompt: str) -> str:
    q = prompt.lower()
    return next((name for name in FORMS if name in q), "other")


def main():
    scores = defaultdict(list)
    with open(sys.argv[1], encoding="utf-8") as f:
        for r in map(json.loads, f):
            if r.get("task") == "scene-vqa":
                scores[form(r["prompt"])].append(r["score"])
    for name, xs in scores.items():
        print(f"{FORMS.get(name, name):30s} n {len(xs):4d}  VQA accuracy {100 * sum(xs) / len(xs):5.1f} %")


if __name__ == "__main__":
    main()
