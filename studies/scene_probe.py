"""What tiny's decoder is given to answer a scene question: linear probes on tiny-clip's patch tokens of
fresh scenes (docs/methods.md, recipe 6). Per object, its colour and shape from one patch token of its
cell, and from all four (a 12×12 cell is 2×2 patches of 6×6 pixels); and each token's own position.

    python studies/scene_probe.py ~/.cache/mfcli/zoo-r6/tiny-clip        # ~2 min on 2 cores

A logistic regression (scikit-learn) per question, on 3,000 scenes drawn with a seed no task uses,
three quarters to fit and one to score; printed per vision layer (0 = the patch embeddings; tiny reads
layer 1 of its 2, `vision_feature_layer=-2`).
"""


import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from mfcli.data import scenes


def hidden_states(clip_dir: str, n: int = 3000, seed: int = 5):
    from PIL import Image
    from transformers import AutoProcessor, CLIPModel

    clip = CLIPModel.from_pretrained(clip_dir).eval()
    processor = AutoProcessor.from_pretrained(clip_dir)
    rng = np.random.default_rng(seed)
    things, images = [], []
    for _ in range(n):
        things.append(scenes.random_things(int(rng.integers(1, 4)), rng))
        images.append(Image.fromarray(scenes.draw(things[-1], rng)))
    pixels = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        states = clip.vision_model(pixel_values=pixels, output_hidden_states=True).hidden_states
    side = int(round((states[0].shape[1] - 1) ** 0.5))
    return [s[:, 1:].numpy() for s in states], things, side


def score(x, y) -> float:
    x, y = np.asarray(x), np.asarray(y)
    fit = len(y) * 3 // 4
    return LogisticRegression(max_iter=3000).fit(x[:fit], y[:fit]).score(x[fit:], y[fit:])


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", help="a tiny-clip directory (e.g. ~/.cache/mfcli/zoo-r6/tiny-clip)")
    states, things, side = hidden_states(ap.parse_args().clip)
    per_cell = side // 2  # patches along a cell's side
    for layer, h in enumerate(states):
        one, four, shape, colour, token_x, token_y = [], [], [], [], [], []
        for k, objects in enumerate(things):
            for t in objects:
                r0, c0 = (t.cell // 2) * per_cell, (t.cell % 2) * per_cell
                tokens = [(r0 + a) * side + c0 + b for a in range(per_cell) for b in range(per_cell)]
                one.append(h[k, tokens[0]])
                four.append(np.concatenate([h[k, j] for j in tokens]))
                shape.append(t.shape)
                colour.append(t.colour)
                token_x += [h[k, j] for j in tokens]
                token_y += tokens
        print(f"layer {layer}: shape {100 * score(one, shape):.1f} % from one token, "
              f"{100 * score(four, shape):.1f} % from its cell's {per_cell ** 2}; "
              f"colour {100 * score(one, colour):.1f} / {100 * score(four, colour):.1f} %; "
              f"a token's own position {100 * score(token_x, token_y):.1f} %")


if __name__ == "__main__":
    main()
