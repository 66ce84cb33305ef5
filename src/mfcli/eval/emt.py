"""`mfcli emt`: the MLLM as an image classifier (EMT §3), or its CLIP vision encoder zero-shot; the same
engine answers VQA, caption and multiple-choice records (each record's `kind` sets its length cap).

Predictions are appended and flushed batch by batch beside a settings sidecar (`OUT.meta.json`). A
killed run resumes where it stopped: only complete batches are kept, so the finished file equals an
uninterrupted run's. Work splits across processes two ways: `--shard I/N` for independent jobs (then
`mfcli merge-preds`), or `accelerate launch` / torchrun, where each process takes a shard and the
main process writes the one output file.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from mfcli import __version__
from mfcli.data.prompts import clip_prompt, noun_for
from mfcli.dist import init_dist
from mfcli.errors import MfcliError, UsageError
from mfcli.eval.endpoint import EndpointOptions, public_url, run_endpoint
from mfcli.eval.predictions import generation_caps, meta_path, prepare_output, update_meta
from mfcli.io.checkpoint import read_manifest, sha256_file
from mfcli.io.images import load_rgb
from mfcli.io.jsonl import dumps, write_json_atomic, write_jsonl_atomic
from mfcli.io.records import PRED_META_SCHEMA, EvalRecord, PredRecord, read_eval, resolve_data_file
from mfcli.kinds import kind_of
from mfcli.models.chat import generate_answers, image_token_of
from mfcli.models.clip import image_features, text_features
from mfcli.models.load import load_clip, load_mllm, model_type_of, resolve_model_path
from mfcli.params import device_option, dtype_option, option
from mfcli.progress import show_progress
from mfcli.provenance import inherited


def _caps_help() -> str:
    """ "32 classification, 16 vqa/choice, 64 caption": the caps for --help, kinds that share one together."""
    by_cap: dict[int, list[str]] = {}
    for name, cap in generation_caps().items():
        by_cap.setdefault(cap, []).append(name)
    return ", ".join(f"{cap} {'/'.join(names)}" for cap, names in by_cap.items())


@dataclass(frozen=True)
class EmtOptions:
    """`mfcli emt`'s options (a field made with `option` is its --flag, with this help)."""

    # left-padded batches with the KV cache; outputs match batch 1 (tested)
    batch_size: int = option(16, "Images per generate call (left padding, KV cache; local weights only).")
    max_new_tokens: int | None = option(None, f"Generation length cap (default by record kind: {_caps_help()}).")
    device: str = device_option()  # these two: local weights only (a server decides its own)
    dtype: str = dtype_option()
    # "I/N": this job takes records I, I+N, I+2N, ...
    shard: str | None = option(None, "I/N: take every N-th record from I (merge with merge-preds).")
    resume: bool = option(True, "Continue OUT when its settings match.", flags=("--resume/--no-resume",))
    overwrite: bool = option(False, "Start afresh even if OUT holds another run.")
    limit: int | None = option(None, "First N records of each input only.")  # for quick looks
    allow_pickle: bool = option(False, "Allow pickle .bin weights (can run code; local weights only).", flags=("--allow-pickle",))

    def __post_init__(self):
        if self.batch_size < 1 or (self.max_new_tokens is not None and self.max_new_tokens < 1):
            raise UsageError("--batch-size and --max-new-tokens must be at least 1.")
        if self.shard is not None:
            parse_shard(self.shard)


def parse_shard(spec: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like I/N (e.g. 0/4), got '{spec}'.") from None
    if not (n >= 1 and 0 <= i < n):
        raise UsageError(f"--shard {spec}: need 0 <= I < N.")
    return i, n


@dataclass(frozen=True)
class Query:
    index: int  # position in the concatenated inputs: merges restore this order
    record: EvalRecord
    image_path: Path | None  # None: a record asked without an image (a kind with `image` False)


def load_queries(data: list[str], limit: int | None = None) -> tuple[list[Query], list[dict]]:
    queries, files, seen = [], [], {}
    for spec in data:
        path = resolve_data_file(spec, "eval.jsonl")
        files.append({"path": str(path.resolve()), "sha256": sha256_file(path)})
        records = read_eval(path)
        for rec in records[:limit] if limit else records:
            if rec.id in seen:
                raise MfcliError(f"id '{rec.id}' appears in both {seen[rec.id]} and {path}.",
                                 "Ids must be unique across the inputs of one run.")
            seen[rec.id] = path
            queries.append(Query(len(queries), rec, path.parent / rec.image if kind_of(rec.kind).image else None))
    if not queries:
        raise MfcliError("the evaluation data holds no records.", "Run `mfcli prepare` to make some.")
    return queries, files


def model_kind(path: str) -> str:
    return "clip" if model_type_of(path) == "clip" else "mllm"


class MllmPredictor:
    def __init__(self, loaded, max_new_tokens: int | None):
        self.loaded, self.max_new_tokens = loaded, max_new_tokens
        tok = loaded.processor.tokenizer
        image_token = image_token_of(loaded.processor)
        if image_token is None or tok.convert_tokens_to_ids(image_token) in (None, tok.unk_token_id):
            raise MfcliError(f"model {loaded.path} has no image token in its tokenizer.",
                             "Use a LLaVA-family checkpoint whose processor defines image_token.")

    def predict(self, images, queries: list[Query]) -> list[str]:
        cap = self.max_new_tokens or max(kind_of(q.record.kind).max_new_tokens for q in queries)  # one kind per batch
        return generate_answers(self.loaded.model, self.loaded.processor, images,
                                [q.record.prompt for q in queries], max_new_tokens=cap)


class ClipPredictor:
    """Zero-shot classification with EMT's CLIP prompts (Appendix B.2); the answer is the label."""

    def __init__(self, loaded):
        self.loaded = loaded
        self._text: dict[tuple[str, ...], object] = {}

    def _label_features(self, labels: tuple[str, ...]):
        if labels not in self._text:
            import torch

            noun = noun_for(labels)
            tok = self.loaded.processor.tokenizer
            enc = tok([clip_prompt(noun, x) for x in labels], padding=True, return_tensors="pt").to(self.loaded.device)
            with torch.inference_mode():
                self._text[labels] = text_features(self.loaded.model, enc["input_ids"], enc["attention_mask"])
        return self._text[labels]

    def predict(self, images, queries: list[Query]) -> list[str]:
        import torch

        pix = self.loaded.processor(images=list(images), return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            feats = image_features(self.loaded.model, pix.to(self.loaded.device, self.loaded.model.dtype))
        out = []
        for f, q in zip(feats, queries):
            labels = self._label_features(q.record.labels)
            out.append(q.record.labels[int((labels @ f.to(labels.dtype)).argmax())])
        return out


def _settings(model_spec: str, model_path: str, kind: str, opts: EmtOptions, files: list[dict],
              shard: str | None, n: int) -> dict:
    manifest = read_manifest(model_path) if Path(model_path).is_dir() else None
    return {"model": model_spec, "model_path": str(Path(model_path).resolve()) if Path(model_path).exists()
            else model_path, "kind": kind, "data": files, "shard": shard, "n_records": n,
            "fingerprint": inherited(manifest),
            "generation": {"do_sample": False, "max_new_tokens": opts.max_new_tokens or generation_caps(),
                           "batch_size": opts.batch_size}, "dtype": opts.dtype}


def batch_queries(queries: list[Query], size: int) -> list[list[Query]]:
    """Consecutive batches of at most `size`, cut where the record kind changes (one length cap each)."""
    batches: list[list[Query]] = []
    for q in queries:
        if not batches or len(batches[-1]) == size or batches[-1][-1].record.kind != q.record.kind:
            batches.append([])
        batches[-1].append(q)
    return batches


def predict_to_file(predictor, queries: list[Query], out: Path, settings: dict, opts: EmtOptions,
                    progress: bool = True) -> int:
    """Every query's answer into OUT (resuming it); returns how many were generated by this call."""
    batches = batch_queries(queries, opts.batch_size)
    sizes = {b: len(qs) for b, qs in enumerate(batches)}
    done = prepare_output(out, settings, sizes, resume=opts.resume, overwrite=opts.overwrite)
    todo = [(b, qs) for b, qs in enumerate(batches) if not all(q.record.id in done for q in qs)]
    from tqdm.auto import tqdm

    with open(out, "a", encoding="utf-8") as f, tqdm(total=len(queries), initial=len(queries) - sum(
            len(qs) for _, qs in todo), desc="emt", unit="img", disable=not progress, leave=False) as bar:
        for b, qs in todo:
            t0 = time.perf_counter()
            images, ok, errors = [], [], {}
            for q in qs:
                try:
                    if q.image_path is not None:  # one kind per batch: all with an image, or none
                        images.append(load_rgb(q.image_path))
                    ok.append(q)
                except Exception as e:  # missing or corrupt image: an error record, the run goes on
                    errors[q.record.id] = f"{type(e).__name__}: {e}"
            images = images if any(q.image_path is not None for q in qs) else None
            answers = dict(zip((q.record.id for q in ok), predictor.predict(images, ok))) if ok else {}
            seconds = round(time.perf_counter() - t0, 4)
            lines = []
            for q in qs:
                r = q.record
                row = PredRecord(settings["model"], r.id, q.index, r.task, r.kind, r.label, r.labels, r.prompt,
                                 r.image, r.references, answers.get(r.id), b, len(qs), seconds, errors.get(r.id))
                lines.append(dumps(row.to_json()) + "\n")
            f.write("".join(lines))  # one write per batch, then flush: a kill loses at most this batch
            f.flush()
            bar.update(len(qs))
    update_meta(out, complete=True)
    return sum(len(qs) for _, qs in todo)


def check_local_only_options(opts: EmtOptions) -> None:
    """With --endpoint the server decides the device, dtype and batching: a local-only option set to
    anything but its default is refused rather than silently ignored."""
    import os

    local = {"batch_size": "--batch-size", "device": "--device", "dtype": "--dtype", "allow_pickle": "--allow-pickle"}
    given = [flag for name, flag in local.items() if getattr(opts, name) != getattr(EmtOptions(), name)]
    if given:
        raise UsageError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to weights loaded here, "
                         "not to --endpoint.", "Drop it; the server decides batching (--in-flight sets how many "
                                               "requests it gets at once).")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError("--endpoint runs in one process, not under torchrun/accelerate launch.",
                         "Run it once with --in-flight N, or as separate jobs with --shard I/N.")


def _run_endpoint(model_spec: str, queries: list[Query], files: list[dict], out: Path, opts: EmtOptions,
                  endpoint: EndpointOptions, progress: bool, log) -> Path:
    if model_spec == "tiny-clip" or model_kind(model_spec) == "clip":
        raise MfcliError("the CLIP baseline scores image and label embeddings, which a chat endpoint does not "
                         "return.", "Run the CLIP baseline without --endpoint (it needs the CLIP's weights).")
    run = run_endpoint(model_spec, queries, files, out, opts, endpoint, progress)
    where = public_url(endpoint.url)
    if run.failed:
        raise MfcliError(f"{run.failed} of {run.records} records got no answer from {where} "
                         f"(first: {run.first_failure or 'the run stopped after failures in a row'}); "
                         f"the answered ones are in {out}.",
                         "Re-run the same command: it asks only those again.")
    if log is not None:
        log(f"emt: {run.records} records, {run.asked} asked of {where} in {run.seconds:.1f} s "
            f"({run.rate:.1f} requests/s) -> {out}")
    return out


def merge_predictions(parts: list[Path], out: Path, *, overwrite: bool = False) -> int:
    """Join shard outputs into one file in the original record order, checking coverage."""
    if out.exists() and not overwrite:
        raise MfcliError(f"{out} already exists.", "Choose another --out or pass --overwrite.")
    metas = []
    for p in parts:
        m = meta_path(p)
        if not m.is_file():
            raise MfcliError(f"{p} has no {m.name} beside it.", "Merge files written by `mfcli emt --shard`.")
        metas.append(json.loads(m.read_text()))
    base = {k: v for k, v in metas[0]["settings"].items() if k not in ("shard", "n_records")}
    shards = set()
    for p, m in zip(parts, metas):
        if {k: v for k, v in m["settings"].items() if k not in ("shard", "n_records")} != base:
            raise MfcliError(f"{p} was made with other settings than {parts[0]}.", "Merge shards of one run only.")
        if not m.get("complete"):
            raise MfcliError(f"{p} is not finished.", "Resume that shard first (re-run the same command).")
        shards.add(m["settings"]["shard"])
    n = {parse_shard(s)[1] for s in shards if s}
    if len(n) != 1 or {parse_shard(s)[0] for s in shards} != set(range(next(iter(n)))):
        raise MfcliError(f"shards {sorted(shards)} do not cover the run exactly once.", "Pass every shard I/N once.")
    rows, seen = [], set()
    for p in parts:
        for line in p.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if r["id"] in seen:
                raise MfcliError(f"id '{r['id']}' appears in two shards.", "Merge shards of one run only.")
            seen.add(r["id"])
            rows.append(r)
    rows.sort(key=lambda r: r["index"])
    write_jsonl_atomic(out, rows)
    settings = {**metas[0]["settings"], "shard": None, "n_records": len(rows)}
    write_json_atomic(meta_path(out), {"schema": PRED_META_SCHEMA, "settings": settings, "mfcli_version": __version__,
                                        "complete": True, "merged_from": [str(p) for p in parts]})
    return len(rows)


def run_emt(model_spec: str, data: list[str], out: str | Path, opts: EmtOptions = EmtOptions(),
            progress: bool | None = None, endpoint: EndpointOptions | None = None, log=None) -> Path:
    """MODEL's answers to every record of DATA into OUT: from weights loaded here, or, with
    `endpoint.url`, from the model an OpenAI-compatible server serves under that name (eval/endpoint.py).
    `log` receives the closing line of an endpoint run."""
    out = Path(out)
    progress = show_progress() if progress is None else progress
    if endpoint is not None and endpoint.url:
        check_local_only_options(opts)
    queries, files = load_queries(data, opts.limit)
    if opts.shard:
        i, n = parse_shard(opts.shard)
        queries = queries[i::n]
    if endpoint is not None and endpoint.url:
        return _run_endpoint(model_spec, queries, files, out, opts, endpoint, progress, log)

    dist = init_dist()
    rank, world = dist.rank, dist.world
    path = resolve_model_path(model_spec, allow_pickle=opts.allow_pickle) if rank == 0 else None
    if dist.active:
        dist.barrier()  # rank 0 builds/resolves `tiny` once; the others then find it cached
        path = resolve_model_path(model_spec, allow_pickle=opts.allow_pickle)
    kind = model_kind(path)
    device = dist.device or opts.device
    if kind == "clip":
        other = next((q.record for q in queries if not kind_of(q.record.kind).labelled), None)
        if other is not None:
            raise MfcliError(f"a CLIP answers classification records only; '{other.id}' is a {other.kind} record.",
                             "Evaluate that data with an MLLM, or pass only classification data to the CLIP.")
        predictor = ClipPredictor(load_clip(path, device=device, dtype=opts.dtype, allow_pickle=opts.allow_pickle))
    else:
        predictor = MllmPredictor(load_mllm(path, device=device, dtype=opts.dtype, allow_pickle=opts.allow_pickle),
                                  opts.max_new_tokens)
    shard = opts.shard
    t0 = time.perf_counter()
    if world == 1:
        made = predict_to_file(predictor, queries, out, _settings(model_spec, path, kind, opts, files, shard,
                                                                  len(queries)), opts, progress)
        _closing_line(log, out, len(queries), made, time.perf_counter() - t0)
        return out
    # data parallel: rank r takes every world-th query of this job's records into its own part file
    part_shard = f"{rank}/{world}"
    part = out.with_name(f".{out.name}.part{rank}-of-{world}")
    mine = queries[rank::world]
    predict_to_file(predictor, mine, part,
                    _settings(model_spec, path, kind, opts, files, part_shard, len(mine)), opts,
                    progress and rank == 0)
    dist.barrier()
    if rank == 0:
        parts = [out.with_name(f".{out.name}.part{r}-of-{world}") for r in range(world)]
        merge_predictions(parts, out, overwrite=True)
        meta = json.loads(meta_path(out).read_text())
        meta["settings"]["shard"] = shard
        meta.pop("merged_from", None)
        write_json_atomic(meta_path(out), meta)  # a field removed: not update_meta's job
        for p in parts:
            p.unlink()
            meta_path(p).unlink()
        _closing_line(log, out, len(queries), None, time.perf_counter() - t0)
    dist.barrier()
    return out


def _closing_line(log, out: Path, records: int, made: int | None, seconds: float) -> None:
    if log is None:
        return
    if made == 0:
        log(f"emt: {out} was already complete ({records} records); nothing to generate.")
    else:
        now = f" ({made} generated now)" if made is not None and made != records else ""
        log(f"emt: {records} records{now} in {seconds:.1f} s -> {out}")
