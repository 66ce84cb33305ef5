"""A trial build, not the recipe: tiny's current recipe with some of its settings changed, and optionally
`scene-vqa` drawn with another number of scenes — how each recipe was chosen (docs/methods.md, the
recipe's trial builds; docs/results.md).

    python studies/trial_build.py --set vqa_practice=3 --out /tmp/trial-k3             # ~5 min on 2 cores
    python studies/trial_build.py --set lm_layers=3 --vqa-scenes 1800 --out /tmp/trial-l3

`--set NAME=VALUE` takes any `TinyRecipe` field (repeatable); `--vqa-scenes N` replaces scene-vqa's
number of scenes (its first scenes are the same for any N: one generator draws them in order; the
held-out split is 20 % of N). Prints the build's held-out figures and its seconds.
"""

import argparse
import dataclasses
import functools
import json
from pathlib import Path

from mfcli.data import scenes, tasks
from mfcli.zoo.tiny import TinyRecipe, build_tiny


def recipe_with(settings: list[str]) -> TinyRecipe:
    fields = {f.name: f for f in dataclasses.fields(TinyRecipe)}
    changes = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        if name not in fields:
            raise SystemExit(f"--set {setting}: no TinyRecipe field '{name}' (fields: {', '.join(fields)})")
        changes[name] = type(getattr(TinyRecipe(), name))(value)
    return dataclasses.replace(TinyRecipe(), **changes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--vqa-scenes", type=int, default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    recipe = recipe_with(args.set)
    if args.vqa_scenes:
        task = tasks.TASKS["scene-vqa"]
        tasks.TASKS["scene-vqa"] = dataclasses.replace(
            task, load=functools.partial(scenes.load_scene_vqa, args.vqa_scenes))
    m = build_tiny(Path(args.out) / "tiny", Path(args.out) / "tiny-clip", recipe, progress=False)
    print(json.dumps({k: round(100 * v, 1) for k, v in m["emt_accuracy"].items()}), f"{m['build_seconds']} s")


if __name__ == "__main__":
    main()
