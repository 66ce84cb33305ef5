"""A trial build, not a recipe: tiny's current recipe at build seed S with scene-vqa's instruction
examples repeated K times in the same steps (docs/results.md, the scene-VQA trials).

    python bench/trial_vqa_practice.py --repeat 3 --seed 0 --out /tmp/trial-k3-s0   # ~5 min on 2 cores
"""

import argparse
import json
from pathlib import Path

import mfcli.models.zoo.tiny as tiny


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    examples = tiny.examples

    def with_practice(data, kinds):
        out = examples(data, kinds)
        if "scene" in kinds:
            out += [e for e in out if e[0] == "scene-vqa"] * (args.repeat - 1)
        return out

    tiny.examples = with_practice
    m = tiny.build_tiny(Path(args.out) / "tiny", Path(args.out) / "tiny-clip", tiny.TinyRecipe(seed=args.seed),
                        progress=False)
    print(json.dumps({k: round(100 * v, 1) for k, v in m["emt_accuracy"].items()}))


if __name__ == "__main__":
    main()
