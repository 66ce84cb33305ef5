"""Linear probes on tiny-clip's vision features: how much of each classification task its encoder can
tell apart, the ceiling for tiny and for fine-tuning it (docs/results.md, "The built-in tiny LLaVA").

    python studies/linear_probe.py

Per task: an L2-regularised logistic regression (scikit-learn, C=1) trained on the features of the
training split and scored on the held-out split `mfcli prepare` makes (20 %, seed 0), on
(a) CLIP's pooled image embedding, the usual linear probe, and (b) the patch tokens of the layer
tiny's projector reads (flattened), what tiny's decoder actually sees.
"""

import json

import torch


def features(clip, processor, images, layer: int):
    from PIL import Image

    pooled, patches = [], []
    with torch.inference_mode():
        for s in range(0, len(images), 512):
            pix = processor(images=[Image.fromarray(a) for a in images[s:s + 512]], return_tensors="pt")["pixel_values"]
            out = clip.vision_model(pixel_values=pix, output_hidden_states=True)
            pooled.append(out.pooler_output)
            patches.append(out.hidden_states[layer][:, 1:].flatten(1))  # CLS dropped, as LLaVA's "default"
    return torch.cat(pooled).numpy(), torch.cat(patches).numpy()


def main():
    import argparse

    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoProcessor, CLIPModel

    from mfcli.data.tasks import TASKS, split_indices
    from mfcli.io.checkpoint import read_manifest
    from mfcli.zoo import ensure_built

    dirs = ensure_built(progress=False)
    clip = CLIPModel.from_pretrained(dirs["tiny-clip"]).eval()
    processor = AutoProcessor.from_pretrained(dirs["tiny-clip"])
    recipe = read_manifest(dirs["tiny"]).options
    out = {}
    for name, task in TASKS.items():
        if task.kind != "classification":
            continue
        images, labels = task.load()
        train, held = split_indices(len(labels), recipe["eval_fraction"], recipe["split_seed"])
        row = {}
        for which, X in zip(("pooled", "patches"), features(clip, processor, images, recipe["feature_layer"])):
            clf = LogisticRegression(C=1.0, max_iter=3000).fit(X[train], labels[train])
            row[which] = float((clf.predict(X[held]) == labels[held]).mean())
        out[name] = row
        print(f"{name:<10} pooled {100 * row['pooled']:5.1f} %   patches (layer {recipe['feature_layer']}) "
              f"{100 * row['patches']:5.1f} %   train {len(train)}, held out {len(held)}", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
