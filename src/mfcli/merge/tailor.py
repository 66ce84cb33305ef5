"""`mfcli tailor`: Model Tailor (Zhu et al., ICML 2024) and merge baselines at the same kept budget.

    Θ_fused = M ⊙ (Θ_sft + C) + (1 − M) ⊙ Θ_pre                                    (Eq. 3)

Per tensor that differs between PRE and SFT:
- linear weights whose inputs were captured on calibration data take the Hessian path: score
  (Eq. 11) = ω·norm(|Δ|) + (1 − ω)·norm(Δ²/(2[H⁻¹]_mm)), keep the top ρ of the changed entries,
  then the decorator (Thm 4.5, mfcli.merge.obs) compensates what was reverted;
- every other tensor (norms, biases, embeddings, the vision tower, tensors without calibration
  inputs) takes salience only: keep the top ρ by |Δ|, no compensation.
Several SFTs (Appendix B.2): union of masks, mean deltas, mean compensation.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from mfcli.errors import MfcliError, UsageError
from mfcli.merge import obs

METHODS = ("tailor", "dare", "grafting", "task-arithmetic", "ties")


@dataclass(frozen=True)
class TailorOptions:
    sparsity: float = 0.1  # fraction of the fine-tuned changes KEPT (the paper's ρ: 10 % keeps 28.8M of 288M)
    method: str = "tailor"
    data: str | None = None  # calibration train.jsonl; default: the data recorded in SFT's manifest
    nsamples: int = 128  # calibration examples, as the authors' code
    omega: float = 0.8  # Eq. 11 weight of salience vs sensitivity (the authors' code: 0.8 / 0.2)
    score_norm: str = "minmax"  # Eq. 11's norm: min-max in the paper; zscore as the authors' code
    mask_scope: str = "layer"  # top-ρ per tensor ("layer") or per row
    block_size: int = 128  # SparseGPT lazy-update block
    damp: float = 0.01  # damping, as a fraction of mean(diag H) (SparseGPT, authors)
    refine_steps: int = 10  # conjugate-gradient steps after OBS (0: OBS only)
    compensate: bool = True  # --no-compensate: the paper's ablation (Table 4)
    layers: str | None = None  # restrict to decoder layers, e.g. "20-31" (the authors' code)
    lam: float = 1.0  # task-arithmetic / ties scaling λ
    seed: int = 0  # DARE's random drop and the calibration sample
    device: str = "auto"

    def __post_init__(self):
        if not 0.0 < self.sparsity <= 1.0:
            raise UsageError(f"--sparsity must be in (0, 1] (the fraction of changes kept), got {self.sparsity}.")
        if self.method not in METHODS:
            from mfcli.errors import did_you_mean

            raise MfcliError(f"unknown merge method '{self.method}'.", did_you_mean(self.method, METHODS))
        if self.score_norm not in ("minmax", "zscore") or self.mask_scope not in ("layer", "row"):
            raise UsageError("--score-norm must be minmax|zscore and --mask-scope layer|row.")
        if not 0.0 <= self.omega <= 1.0:
            raise UsageError(f"--omega must be in [0, 1], got {self.omega}.")


def _norm(x: torch.Tensor, how: str) -> torch.Tensor:
    if how == "zscore":
        return (x - x.mean()) / (x.std() + 1e-12)
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo + 1e-12)


def top_mask(score: torch.Tensor, changed: torch.Tensor, rho: float, scope: str) -> torch.Tensor:
    """Keep the fraction ρ of the *changed* entries with the highest score (per tensor or per row)."""
    score = torch.where(changed, score.float(), torch.full_like(score, float("-inf"), dtype=torch.float32))
    if scope == "row" and score.dim() == 2:
        k = torch.clamp((changed.sum(1).float() * rho).round().long(), min=0)
        order = torch.argsort(score, dim=1, descending=True)
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(score.shape[1]).expand_as(order))
        return (ranks < k.unsqueeze(1)) & changed
    n = int(round(int(changed.sum()) * rho))
    mask = torch.zeros(score.numel(), dtype=torch.bool)
    if n > 0:
        mask[torch.topk(score.flatten(), n).indices] = True
    return mask.view(score.shape) & changed


@dataclass
class TensorReport:
    name: str
    changed: int
    kept: int
    path: str  # "hessian" or "salience"
    error_masked: float | None = None
    error_fused: float | None = None
    damp: float | None = None
    retries: int = 0
    seconds: float = 0.0


@dataclass
class Report:
    tensors: list = field(default_factory=list)

    def summary(self) -> dict:
        changed = sum(t.changed for t in self.tensors)
        kept = sum(t.kept for t in self.tensors)
        return {"changed_params": changed, "kept_params": kept, "kept_fraction": kept / changed if changed else 0.0,
                "tensors": [asdict(t) for t in self.tensors]}


def loss_gradients(model, batches, names: set[str]) -> dict[str, torch.Tensor]:
    """Grafting's signal: ∇ of the target-task loss at the fine-tuned weights."""
    params = {n: p for n, p in model.named_parameters() if n in names}
    for n, p in model.named_parameters():
        p.requires_grad_(n in params)
    for b in batches:
        model(**b).loss.backward()
    return {n: p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for n, p in params.items()}


def tensor_seed(seed: int, name: str) -> int:
    """A reproducible seed per (run seed, tensor name)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little") & (2 ** 63 - 1)


def in_scope(name: str, layers: set[int] | None, decoder_prefix: str) -> bool:
    if layers is None:
        return True
    if not name.startswith(decoder_prefix):
        return False
    return int(name[len(decoder_prefix):].split(".")[0]) in layers


def parse_layers(spec: str | None) -> set[int] | None:
    if not spec:
        return None
    out = set()
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def merge_state(pre: dict, sfts: list[dict], opts: TailorOptions, *, hessians: list[dict] | None = None,
                grads: list[dict] | None = None, linear_of: dict[str, str] | None = None,
                layer_filter=None) -> tuple[dict, Report]:
    """The fused state dict and a per-tensor report; works on plain tensors (testable with randn).

    linear_of maps a weight's parameter name to its nn.Linear module name (the Hessian key)."""
    from peft.utils import merge_utils

    report = Report()
    out = {}
    for name, w_pre in pre.items():
        deltas = [s[name].float() - w_pre.float() for s in sfts]
        changed = torch.zeros_like(deltas[0], dtype=torch.bool)
        for d in deltas:
            changed |= d != 0
        for i, d in enumerate(deltas):
            if not torch.isfinite(d).all():
                raise MfcliError(f"tensor '{name}' holds NaN or inf (in PRE or SFT #{i + 1}).",
                                 "Check that checkpoint; mfcli will not merge non-finite weights.")
        if not changed.any() or (layer_filter is not None and not layer_filter(name)):
            out[name] = w_pre.clone()  # unchanged, or outside --layers: the pre-trained value
            continue
        t0 = time.perf_counter()
        rho = opts.sparsity
        rep = TensorReport(name, int(changed.sum()), 0, "salience")
        if opts.method in ("dare", "ties", "task-arithmetic"):
            weights = torch.full((len(deltas),), opts.lam if opts.method != "dare" else 1.0)
            if opts.method == "dare":
                # peft's random_pruning draws from the global RNG: a seed of this tensor's own (not one
                # seed reset per tensor, which drew the same mask for every tensor of a shape), forked
                # so the caller's RNG is untouched
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(tensor_seed(opts.seed, name))
                    merged = merge_utils.dare_linear(deltas, weights / len(deltas), rho)
            elif opts.method == "ties":
                merged = merge_utils.ties(deltas, weights, rho)
            else:  # task arithmetic at the same budget: magnitude-pruned to ρ, then λ·Δ
                merged = merge_utils.task_arithmetic(
                    [merge_utils.prune(d, rho, "magnitude") for d in deltas], weights / len(deltas))
            rep.kept = int((merged != 0).sum())
            out[name] = (w_pre.float() + merged).to(w_pre.dtype)
        else:
            masks, fused = [], []
            for i, d in enumerate(deltas):
                key = (linear_of or {}).get(name)
                H = hessians[i].get(key).H if (hessians and key in hessians[i]) else None
                if opts.method == "grafting":
                    g = grads[i].get(name) if grads else None
                    score = (d * g).abs() if g is not None else d.abs()  # first-order loss change of reverting
                    m = top_mask(score, d != 0, rho, opts.mask_scope)
                    masks.append(m)
                    fused.append(torch.where(m, d, torch.zeros_like(d)))
                elif H is not None and d.dim() == 2:
                    rep.path = "hessian"
                    inv = obs.damped_inverse(H, opts.damp)
                    score = opts.omega * _norm(d.abs(), opts.score_norm) + (1 - opts.omega) * _norm(
                        obs.sensitivity(d, inv), opts.score_norm)  # Eq. 9-11
                    m = top_mask(score, d != 0, rho, opts.mask_scope)
                    res = obs.tailor_linear(d, m, H, damp=opts.damp, block_size=opts.block_size,
                                            refine_steps=opts.refine_steps, compensate_=opts.compensate, inv=inv)
                    masks.append(m)
                    fused.append(res.delta)
                    rep.error_masked = (rep.error_masked or 0.0) + res.error_masked
                    rep.error_fused = (rep.error_fused or 0.0) + res.error_fused
                    rep.damp, rep.retries = res.damp, max(rep.retries, res.retries)
                else:
                    m = top_mask(d.abs(), d != 0, rho, opts.mask_scope)  # Eq. 10, salience only
                    masks.append(m)
                    fused.append(torch.where(m, d, torch.zeros_like(d)))
            union = torch.zeros_like(masks[0])
            for m in masks:
                union |= m
            # Appendix B.2: M_agg ⊙ (mean Δ_i + mean C_i), with C_i = fused_i − Δ_i on M_i
            mean_delta = sum(deltas) / len(deltas)
            mean_comp = sum(torch.where(m, f - d, torch.zeros_like(d)) for m, f, d in zip(masks, fused, deltas)) / len(deltas)
            patch = torch.where(union, mean_delta + mean_comp, torch.zeros_like(mean_delta))
            rep.kept = int(union.sum())
            out[name] = (w_pre.float() + patch).to(w_pre.dtype)
        if not torch.isfinite(out[name]).all():
            raise MfcliError(f"tensor '{name}' became NaN/inf while merging.", "Raise --damp, or check the inputs.")
        rep.seconds = round(time.perf_counter() - t0, 4)
        report.tensors.append(rep)
    return out, report


def _calibration(sft_path: str, opts: TailorOptions):
    """Calibration train.jsonl: --data, or the training data recorded in SFT's manifest."""
    from mfcli.io.checkpoint import read_manifest

    if opts.data:
        return opts.data
    manifest = read_manifest(sft_path) or {}
    files = [d["path"] for d in manifest.get("data", []) if str(d.get("path", "")).endswith(".jsonl")]
    if not files:
        raise MfcliError(f"no calibration data: {sft_path} records no training data in mfcli.json.",
                         "Pass --data path/to/train.jsonl (the target task's training data).")
    if not Path(files[0]).is_file():
        raise MfcliError(f"the calibration data recorded for {sft_path} ({files[0]}) is gone.", "Pass --data.")
    return files[0]


def calibration_sample(n_total: int, n: int, seed: int) -> list[int]:
    """Indices of a seeded random sample of n records (the file's first n could all be one class)."""
    import numpy as np

    if n >= n_total:
        return list(range(n_total))
    return sorted(np.random.default_rng(seed).choice(n_total, size=n, replace=False).tolist())


def _batches(processor, data: str, n: int, seed: int, batch_size: int = 8):
    from mfcli.train.data import Batcher, load_examples

    examples, _ = load_examples([data])
    examples = [examples[i] for i in calibration_sample(len(examples), n, seed)]
    batcher = Batcher(processor)
    return [batcher(examples[i:i + batch_size]) for i in range(0, len(examples), batch_size)]


def _changed(pre, sft, key: str) -> bool:
    return not torch.equal(pre.get(key), sft.get(key))


def _materialise_lora(path: str, tmp_root: Path) -> str:
    """A LoRA adapter is merged into its base once (§5.4) and streamed from a temporary copy."""
    from mfcli.models.load import load_mllm

    loaded = load_mllm(path, device="cpu", dtype="float32")
    d = tmp_root / f"merged-{len(list(tmp_root.iterdir()))}"
    loaded.model.save_pretrained(d)
    loaded.processor.save_pretrained(d)
    return str(d)


def run_tailor(pre_spec: str, sft_specs: list[str], out: str | Path, opts: TailorOptions = TailorOptions(),
               log=None) -> dict:
    """Stream PRE and the SFTs tensor by tensor and the calibration data layer by layer (see stream.py)."""
    import shutil
    import tempfile

    from transformers import AutoConfig

    from mfcli.io.checkpoint import refuse_existing
    from mfcli.models.families import family_of
    from mfcli.models.load import resolve_model_path
    from mfcli.merge import stream

    out = Path(out)
    refuse_existing(out)
    pre_path = resolve_model_path(pre_spec)
    config = AutoConfig.from_pretrained(pre_path)
    family = family_of(config)
    pre = stream.LazyCheckpoint(pre_path)
    scratch = Path(tempfile.mkdtemp(prefix="mfcli-tailor-"))
    try:
        sources, sfts = [], []
        for spec in sft_specs:
            path = resolve_model_path(spec)
            if (Path(path) / "adapter_config.json").is_file():
                sfts.append(stream.LazyCheckpoint(_materialise_lora(path, scratch)))
            else:
                sft_cfg = json.loads((Path(path) / "config.json").read_text()).get("model_type")
                if sft_cfg != config.model_type:
                    raise MfcliError(f"{spec} is a '{sft_cfg}' model and {pre_spec} a '{config.model_type}' one.",
                                     "Tailor a fine-tune of PRE, not another model.")
                sfts.append(stream.LazyCheckpoint(path))
            sources.append(path)
        for spec, s in zip(sft_specs, sfts):
            if set(s.keys()) != set(pre.keys()):
                first = sorted(set(s.keys()) ^ set(pre.keys()))[0]
                raise MfcliError(f"{spec} and {pre_spec} have different architectures (first differing tensor: "
                                 f"{first}).", "Tailor a fine-tune of PRE, not another model.")
            for k in pre.keys():
                if s.meta(k)[0] != pre.meta(k)[0]:
                    raise MfcliError(f"{spec} and {pre_spec} differ in shape at {k} ({s.meta(k)[0]} vs "
                                     f"{pre.meta(k)[0]}).", "Tailor a fine-tune of PRE, not another model.")
        if all(not any(_changed(pre, s, k) for k in pre.keys()) for s in sfts) and log:
            log(f"warning: every SFT equals {pre_spec}; writing PRE unchanged.")
        return _stream_merge(pre_spec, pre_path, pre, sft_specs, sources, sfts, config, family, out, opts)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _stream_merge(pre_spec, pre_path, pre, sft_specs, sources, sfts, config, family, out, opts) -> dict:
    from safetensors.torch import save_file
    from transformers import AutoProcessor

    from mfcli.io.checkpoint import Manifest, staged_dir
    from mfcli.io.jsonl import write_json_atomic
    from mfcli.merge import stream

    dec_prefix = family.decoder_layers + "."
    dec_norm = stream.normalize(dec_prefix)
    layers = parse_layers(opts.layers)
    scope = (lambda k: in_scope(stream.normalize(k), layers, dec_norm)) if layers else None
    layer_keys: dict[int, list[str]] = {}
    rest_keys = []
    for k in pre.keys():
        nk = stream.normalize(k)
        if nk.startswith(dec_norm):
            layer_keys.setdefault(int(nk[len(dec_norm):].split(".")[0]), []).append(k)
        else:
            rest_keys.append(k)

    head = stream.head_model(config)
    layer_cls = type(family.module(head, "decoder_layers")[0])
    text_config = head.config.text_config  # with the attention implementation resolved
    linears = {n for n, m in head.named_modules() if isinstance(m, torch.nn.Linear) and not n.startswith(dec_prefix)}
    calib, caches, hess, grads = [], [], [], []
    for src, sft in zip(sources, sfts):
        H: dict = {}
        cache: list = []
        if opts.method in ("tailor", "grafting") and any(_changed(pre, sft, k) for k in pre.keys()):
            data = _calibration(src, opts)
            calib.append(data)
            if opts.method == "grafting":  # the loss gradient needs the whole model: one model in memory
                from mfcli.models.load import load_mllm

                m = load_mllm(src, device="cpu", dtype="float32")
                names = {n for n, _ in m.model.named_parameters()}
                g = loss_gradients(m.model, _batches(m.processor, data, opts.nsamples, opts.seed), names)
                grads.append({pre.key_for(n): v for n, v in g.items()})
                del m
            else:
                processor = AutoProcessor.from_pretrained(sft.path)
                batches = _batches(processor, data, opts.nsamples, opts.seed)
                stream.load_params(head, sft, "")  # the non-decoder parts, and layer 0 (replaced below)
                changed = {n for n in linears if _changed(pre, sft, pre.key_for(n + ".weight"))}
                hooks = stream.linear_hooks(head, "", changed, H)
                family.module(head, "decoder_layers")[0] = stream._Catcher(cache)
                try:
                    with torch.inference_mode():
                        for b in batches:
                            try:
                                head(**{k: v for k, v in b.items() if k != "labels"})
                            except stream._Stop:
                                pass
                finally:
                    for h in hooks:
                        h.remove()
                    family.module(head, "decoder_layers")[0] = layer_cls(text_config, layer_idx=0)
        caches.append(cache)
        hess.append(H)

    report = Report()
    with staged_dir(out) as tmp:
        weight_map = {}

        def merge_group(keys: list[str], hessians: list[dict], shard: str):
            hessians = [{n: a for n, a in h.items() if a.n > 0} for h in hessians]  # modules that never ran
            linear_of = {pre.key_for(n + ".weight"): n for h in hessians for n in h}
            fused, rep = merge_state({k: pre.get(k) for k in keys}, [{k: s.get(k) for k in keys} for s in sfts], opts,
                                     hessians=hessians, grads=grads or None, linear_of=linear_of, layer_filter=scope)
            save_file({k: v.contiguous() for k, v in fused.items()}, str(tmp / shard), metadata={"format": "pt"})
            weight_map.update({k: shard for k in keys})
            report.tensors.extend(rep.tensors)

        for i in sorted(layer_keys):
            layer_h = []
            for s, cache in zip(sfts, caches):
                H: dict = {}
                if cache and (layers is None or i in layers):
                    layer = layer_cls(text_config, layer_idx=i).eval()
                    stream.load_params(layer, s, f"{dec_prefix}{i}.")
                    names = {f"{dec_prefix}{i}.{n}" for n, m in layer.named_modules() if isinstance(m, torch.nn.Linear)
                             and _changed(pre, s, pre.key_for(f"{dec_prefix}{i}.{n}.weight"))}
                    hooks = stream.linear_hooks(layer, f"{dec_prefix}{i}.", names, H)
                    with torch.inference_mode():
                        for j, (hs, kw) in enumerate(cache):
                            o = layer(hs, **kw)
                            cache[j] = ((o[0] if isinstance(o, tuple) else o), kw)  # SFT's outputs feed layer i+1
                    for h in hooks:
                        h.remove()
                    del layer
                layer_h.append(H)
            merge_group(layer_keys[i], layer_h, f"model-{i + 1:05d}-layer.safetensors")
        # the head's inputs: the last layer's outputs through the final norm
        for s, cache, H in zip(sfts, caches, hess):
            if cache and _changed(pre, s, pre.key_for(family.lm_head + ".weight")):
                stream.load_params(head, s, "")
                hooks = stream.linear_hooks(head, "", {family.lm_head}, H)
                norm, lm_head = family.module(head, "final_norm"), family.module(head, "lm_head")
                with torch.inference_mode():
                    for hs, _ in cache:
                        lm_head(norm(hs))
                for h in hooks:
                    h.remove()
        del head
        merge_group(rest_keys, hess, "model-00000-rest.safetensors")
        total = sum(_nbytes(pre, k) for k in pre.keys())
        write_json_atomic(tmp / "model.safetensors.index.json", {"metadata": {"total_size": total},
                                                                  "weight_map": dict(sorted(weight_map.items()))})
        for f in Path(pre_path).iterdir():  # config, generation config, processor and tokenizer files
            if f.is_file() and not f.name.endswith(".safetensors") and f.name not in (
                    "mfcli.json", "model.safetensors.index.json", "trainer_state.json"):
                (tmp / f.name).write_bytes(f.read_bytes())
        summary = report.summary()
        m = Manifest("tailor", options=asdict(opts), parents=[pre_path] + sources, seed=opts.seed, metrics=summary)
        for d in dict.fromkeys(calib):
            m.add_data(d)
        write_json_atomic(tmp / "mfcli.json", asdict(m))
    check_coverage(pre_path, out)
    return summary


_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}


def _nbytes(ckpt, key: str) -> int:
    shape, dtype = ckpt.meta(key)
    return int(torch.Size(shape).numel()) * _BYTES.get(dtype, 4)


def _tensor_index(ckpt: str | Path) -> dict[str, tuple]:
    from safetensors import safe_open

    out = {}
    for f in sorted(Path(ckpt).glob("*.safetensors")):
        if f.name == "trainer_state.safetensors":
            continue
        with safe_open(str(f), "pt") as sf:
            for k in sf.keys():
                t = sf.get_slice(k)
                out[k] = (tuple(t.get_shape()), t.get_dtype())
    return out


def check_coverage(pre_dir: str | Path, out_dir: str | Path) -> None:
    """The output must have exactly PRE's tensor names, shapes and dtypes (a public merge tool once
    dropped a VLM's visual tensors silently)."""
    a, b = _tensor_index(pre_dir), _tensor_index(out_dir)
    if a != b:
        diff = sorted(set(a) ^ set(b)) or sorted(k for k in a if a[k] != b.get(k))
        import shutil

        shutil.rmtree(out_dir, ignore_errors=True)
        raise MfcliError(f"internal: the merged checkpoint does not cover PRE's tensors ({diff[0]}).",
                         "Report this as a bug; nothing was written.")
