"""scene-vqa accuracy by question form, from a judged file (docs/results.md, the tiny table: which
questions tiny gets wrong).

    python studies/scene_vqa_forms.py runs/r6-animals/tiny.judged.jsonl [--by-objects]

--by-objects splits each form by the number of objects in the scene (1-3; the scenes are redrawn from
scene-vqa's seed, the record id giving the index): a lookup that binds colour to shape is only tested
when there are two or more.
"""

import argparse
import json
import re
from collections import defaultdict

FORMS = {"how many": "How many shapes are there?", "colour": "What colour is the X?",
         "which shape": "Which shape is C?", "where is": "Where is the C X?"}


def form(prompt: str) -> str:
    q = prompt.lower()
    return next((name for name in FORMS if name in q), "other")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("judged")
    ap.add_argument("--by-objects", action="store_true")
    args = ap.parse_args()
    objects = None
    if args.by_objects:
        from mfcli.data.scenes import scene_vqa_objects

        objects = scene_vqa_objects()
    scores = defaultdict(list)
    with open(args.judged, encoding="utf-8") as f:
        for r in map(json.loads, f):
            if r.get("task") == "scene-vqa":
                key = form(r["prompt"])
                if objects is not None:
                    key = (key, len(objects[int(re.search(r"(\d+)$", r["id"]).group(1))]))
                scores[key].append(r["score"])
    for key in sorted(scores, key=str):
        name, n_objects = key if isinstance(key, tuple) else (key, None)
        label = FORMS.get(name, name) + (f", {n_objects} object(s)" if n_objects else "")
        xs = scores[key]
        print(f"{label:42s} n {len(xs):4d}  VQA accuracy {100 * sum(xs) / len(xs):5.1f} %")


if __name__ == "__main__":
    main()
