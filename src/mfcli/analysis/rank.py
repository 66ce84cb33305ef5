"""`mfcli rank`: effective rank of a model's visual representation on each task (MDGD Eq. 4, Fig. 4).

The representation is the language model's hidden state at the image-token positions:
- layer "last": the last decoder layer's output *after* the final norm (captured from the norm
  module itself, so it does not depend on how a transformers version fills `hidden_states`);
- layer i (0 … L): `hidden_states[i]`, i.e. the embeddings (0) or decoder layer i's output, before
  any norm.
Default: one matrix per (model, task) stacking the image tokens of `nsamples` images drawn at random
(seeded) from the task's eval records (MDGD App. C). Its Gram matrix is accumulated batch by batch in
float64, so memory stays at dims² whatever the number of tokens, and the SVD is an eigen-decomposition
of a dims × dims matrix. `per_image` gives the mean (and spread) of per-image values instead.
"""

from __future__ import annotations

import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from mfcli.errors import MfcliError, UsageError
from mfcli.io.images import load_rgb
from mfcli.io.jsonl import dumps, write_jsonl_atomic
from mfcli.io.records import RANK_PARTIAL_SCHEMA, RankRecord, read_eval, resolve_data_file
from mfcli.models.chat import generation_text
from mfcli.models.load import load_mllm, resolve_model_path
from mfcli.params import device_option, dtype_option, option


@dataclass(frozen=True)
class RankOptions:
    """`mfcli rank`'s options (a field made with `option` is its --flag, with this help)."""

    # images per task: enough tokens that the dims, not the sample, bound the rank
    nsamples: int = option(256, "Images per task.")
    per_image: bool = option(False, "Mean of per-image eranks instead of one stacked matrix per task.",
                             flags=("--per-image",))
    layers: str = option("last", "last (after the final norm), all, or hidden-state indices like 0,2 (0 = "
                                 "embeddings).")
    batch_size: int = option(16, "Images per forward pass.")
    top: int = 16  # leading singular values stored with each record
    seed: int = option(0, "Which images are sampled.")
    device: str = device_option()
    dtype: str = dtype_option()

    def __post_init__(self):
        if self.nsamples < 1 or self.batch_size < 1:
            raise UsageError("--nsamples and --batch-size must be at least 1.")
        parse_layers(self.layers, 1)  # syntax check; the range is checked against the model


def parse_layers(spec: str, n_layers: int) -> list:
    """"last", "all" (every hidden state and the normed last one), or "i,j" indices 0 … n_layers."""
    if spec == "last":
        return ["last"]
    if spec == "all":
        return list(range(n_layers + 1)) + ["last"]
    try:
        idx = [int(x) for x in spec.split(",")]
    except ValueError:
        raise UsageError(f"--layers must be last, all, or indices like 0,2; got '{spec}'.") from None
    return idx


def sample_records(records: list, n: int, seed: int) -> list:
    """A seeded random sample (eval files are often grouped by label: the first n would be one class)."""
    if len(records) <= n:
        return list(records)
    picked = sorted(random.Random(seed).sample(range(len(records)), n))
    return [records[i] for i in picked]


class GramAccumulator:
    def __init__(self):
        self.G = None
        self.tokens = 0

    def add(self, Z):
        import torch

        Z = Z.detach().to(torch.float64)
        self.G = Z.T @ Z if self.G is None else self.G.add_(Z.T @ Z)
        self.tokens += Z.shape[0]

    def singular_values(self):
        from mfcli.analysis.erank import sigma_from_gram

        return sigma_from_gram(self.G)


def _features(model, processor, family, images, prompts, layers: list, device):
    """{layer: list of (image tokens × dims) float tensors, one per image}."""
    import torch

    texts = [generation_text(processor, p) for p in prompts]
    inputs = processor(text=texts, images=images, return_tensors="pt", padding=True)
    inputs = {k: v.to(device) for k, v in inputs.items()}
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    tok = processor.tokenizer
    image_token = getattr(processor, "image_token", None) or "<image>"
    is_image = inputs["input_ids"] == tok.convert_tokens_to_ids(image_token)
    captured = {}
    hook = family.module(model, "final_norm").register_forward_hook(lambda m, i, o: captured.__setitem__("last", o))
    try:
        with torch.inference_mode():
            out = model(**inputs, output_hidden_states=any(x != "last" for x in layers))
    finally:
        hook.remove()
    feats = {}
    for layer in layers:
        h = captured["last"] if layer == "last" else out.hidden_states[layer]
        feats[layer] = [h[b][is_image[b]].float().cpu() for b in range(h.shape[0])]
    return feats


def rank_model(spec: str, tasks: dict[str, list], root_of: dict[str, Path], opts: RankOptions, *,
               want_tsne: bool = False, log=None) -> tuple[list[RankRecord], dict]:
    """Records for one model over every task; with want_tsne, also mean-pooled last-layer features."""
    import numpy as np
    import torch

    from mfcli.analysis.erank import effective_rank, effective_rank_from_sigma

    loaded = load_mllm(spec, device=opts.device, dtype=opts.dtype)
    model, processor, family = loaded.model, loaded.processor, loaded.family
    n_layers = len(family.module(model, "decoder_layers"))
    layers = parse_layers(opts.layers, n_layers)
    bad = [x for x in layers if x != "last" and not 0 <= x <= n_layers]
    if bad:
        raise UsageError(f"--layers {opts.layers}: {spec} has hidden states 0 … {n_layers}.")
    records, tsne = [], {}
    for task, recs in tasks.items():
        recs = sample_records(recs, opts.nsamples, opts.seed)
        grams = {layer: GramAccumulator() for layer in layers}
        per_image = {layer: [] for layer in layers}
        pooled, labels = [], []
        for s in range(0, len(recs), opts.batch_size):
            chunk = recs[s:s + opts.batch_size]
            images = [load_rgb(root_of[task] / r.image) for r in chunk]
            feats = _features(model, processor, family, images, [r.prompt for r in chunk], layers, loaded.device)
            for layer, zs in feats.items():
                for z in zs:
                    if opts.per_image:
                        per_image[layer].append(effective_rank(z))
                    grams[layer].add(z)
            if want_tsne:
                last = feats[layers[-1]]
                pooled.extend(z.mean(0).numpy() for z in last)
                labels.extend(r.label for r in chunk)
        for layer in layers:
            g = grams[layer]
            sigma = g.singular_values()
            if opts.per_image:
                vals = torch.tensor(per_image[layer], dtype=torch.float64)
                erank, spread = float(vals.mean()), float(vals.std()) if len(vals) > 1 else 0.0
            else:
                erank, spread = effective_rank_from_sigma(sigma), None
            rec = RankRecord(spec, loaded.path, task, layer, "per-image" if opts.per_image else "stacked", len(recs),
                             g.tokens, int(g.G.shape[0]), tuple(round(float(x), 6) for x in sigma[:opts.top]),
                             erank, spread)
            records.append(rec)
            if log:
                log(f"{spec}  {task:<12} layer {layer!s:<5} erank {rec.erank:8.3f}  ({g.tokens} tokens)")
        if want_tsne:
            tsne[task] = (np.stack(pooled), labels)
    del model
    return records, tsne


def _read_partial(path: Path, header: dict) -> dict[str, list[RankRecord]]:
    """Records of models finished by an earlier, interrupted run with the same options and data."""
    import json

    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        if not lines or json.loads(lines[0]) != json.loads(json.dumps(header)):
            return {}  # other options or data: start over
    except ValueError:
        return {}
    done: dict[str, list] = {}
    for line in lines[1:]:
        try:
            item = json.loads(line)
            done[item["model_spec"]] = [RankRecord.from_json(r, str(path)) for r in item["records"]]
        except (ValueError, KeyError):  # a line cut short by the interruption: keep what came before it
            break
    return done


def run_rank(models: list[str], data: list[str], out: str | Path, opts: RankOptions = RankOptions(), *,
             features: dict | None = None, log=None) -> list[RankRecord]:
    """Rank every model on every task's held-out records, resumable per model (OUT's partial file).
    `features`: a dict to fill with each model's mean-pooled visual features by task (for a t-SNE,
    report/plots.py), which re-ranks a model the partial file already holds."""
    tasks: dict[str, list] = {}
    root_of: dict[str, Path] = {}
    for d in data:
        f = resolve_data_file(d, "eval.jsonl")
        for r in read_eval(f):
            tasks.setdefault(r.task, []).append(r)
            root_of[r.task] = f.parent
    if not tasks:
        raise MfcliError("no eval records in the DATA given.", "Pass prepared dirs (mfcli prepare) or eval.jsonl files.")

    for spec in models:  # every MODEL checked before any is ranked: a mistake fails now, not minutes in
        resolve_model_path(spec)

    # a file beside OUT collects each finished model's records, so an interrupted run resumes at the
    # next model; it is only trusted for the same options and data, and removed once OUT is written
    partial = None if str(out) == "-" else Path(out).with_name(f".{Path(out).name}.partial")
    header = {"schema": RANK_PARTIAL_SCHEMA, "options": asdict(opts), "data": sorted(map(str, data))}
    done: dict[str, list] = _read_partial(partial, header) if partial else {}
    if partial and not done:
        partial.write_text(dumps(header) + "\n", encoding="utf-8")
    rows: list[RankRecord] = []
    for spec in models:
        if spec in done and features is None:  # features need the model run again
            if log:
                log(f"{spec}: already ranked (resumed from {partial.name})")
            rows.extend(done[spec])
            continue
        recs, feats = rank_model(spec, tasks, root_of, opts, want_tsne=features is not None, log=log)
        rows.extend(recs)
        if features is not None:
            features[spec] = feats
        if partial:
            with open(partial, "a", encoding="utf-8") as f:
                f.write(dumps({"model_spec": spec, "records": [r.to_json() for r in recs]}) + "\n")
    if str(out) == "-":
        sys.stdout.write("".join(dumps(r.to_json()) + "\n" for r in rows))
    else:
        write_jsonl_atomic(Path(out), [r.to_json() for r in rows])
        partial.unlink(missing_ok=True)
    return rows

