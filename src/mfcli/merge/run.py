"""`mfcli tailor`'s driver: PRE and the SFTs streamed tensor by tensor, calibration inputs run one decoder
layer at a time (stream.py), each group of tensors merged by the chosen method (fuse.py, methods/)
and written as its own shard — for every budget of `--sparsity 0.02,0.1,…` from the same pass.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from mfcli.errors import MfcliError, UsageError
from mfcli.io.checkpoint import Manifest, read_manifest, refuse_existing, staged_dir
from mfcli.io.jsonl import write_json_atomic
from mfcli.io.records import BUDGETS_SCHEMA, resolve_data_file
from mfcli.merge import methods, stream
from mfcli.merge.calibration import (calibration_batches, calibration_data, fisher_diagonal, loss_gradients,
                                     normalise_fishers)
from mfcli.merge.contract import DeclaredOptions, with_method_options
from mfcli.merge.fuse import Report, merge_state
from mfcli.merge.global_trim import whole_vector_cuts
from mfcli.merge.options import TailorOptions
from mfcli.merge.scope import in_scope
from mfcli.models.families import canonical_name, family_of, one_layer_model
from mfcli.models.load import load_config, load_mllm, load_processor, resolve_model_path
from mfcli.progress import show_progress
from mfcli.provenance import inherited, weight_files


def router(opts: TailorOptions, family):
    """What each changed tensor gets (fuse.merge_state's route): outside --layers it reverts to PRE
    (the authors' code tailored layers 20-31 and reset the rest); outside --scope (scope.py) it keeps
    its fine-tuned value; otherwise the method merges it."""

    layers = parse_layers(opts.layers)
    decoder = canonical_name(family.prefix("decoder_layers"))

    def route(key: str) -> str:
        name = canonical_name(key)
        is_decoder = name.startswith(decoder)
        if layers is not None and not (is_decoder and int(name[len(decoder):].split(".")[0]) in layers):
            return "pre"
        return "merge" if in_scope(key, opts.scope, family) else "sft"

    return route


def parse_layers(spec: str | None) -> set[int] | None:
    if not spec:
        return None
    out = set()
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def _changed(pre, sft, key: str) -> bool:
    return not torch.equal(pre.get(key), sft.get(key))


def _materialise_lora(path: str, tmp_root: Path) -> str:
    """A LoRA adapter is merged into its base once (§5.4) and streamed from a temporary copy."""

    loaded = load_mllm(path, device="cpu", dtype="float32")
    d = tmp_root / f"merged-{len(list(tmp_root.iterdir()))}"
    loaded.model.save_pretrained(d)
    loaded.processor.save_pretrained(d)
    return str(d)


def parse_budgets(spec: str | float) -> list[float]:
    """`--sparsity 0.1` or a list `0.02,0.05,0.1,0.2` (every budget from one calibration pass); checked
    here, before any model is resolved, so a bad budget costs nothing."""
    try:
        values = [float(x) for x in str(spec).split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--sparsity must be a number or a comma-separated list of numbers, got '{spec}'.") from None
    if not values:
        raise UsageError("--sparsity is empty.")
    if len(values) > 1:
        if len(set(values)) != len(values):
            raise UsageError(f"--sparsity {spec} names a budget twice.")
        bad = [v for v in values if not 0.0 < v < 1.0]
        if bad:
            raise UsageError(f"--sparsity {bad[0]:g}: every budget of a list must lie in (0, 1).")
    elif not 0.0 < values[0] <= 1.0:
        raise UsageError(f"--sparsity must be in (0, 1] (the fraction of changes kept), got {values[0]:g}.")
    return values


def budget_dir(rho: float) -> str:
    """The sub-directory of one budget in a multi-budget run's OUT."""
    return f"sparsity-{rho:g}"


@dataclass(frozen=True)
class Budget:
    """One budget of a tailor run: ρ (the fraction of each tensor's changes kept; a method without a
    budget has its options' value), where its checkpoint is, and its report's summary (kept_params,
    changed_params, kept_fraction, per-path counts, …)."""

    sparsity: float
    path: Path
    summary: dict


def recorded_options(opts: TailorOptions) -> dict:
    """One flat record of what the run read, as `mfcli tailor`'s flags name it: the run's options and the
    method's own (its options class's fields)."""
    own = asdict(opts.method_options) if opts.method_options is not None else {}
    return {**{k: v for k, v in asdict(opts).items() if k != "method_options"}, **own}


def run_tailor(pre_spec: str, sft_specs: list[str], out: str | Path, opts: TailorOptions = TailorOptions(),
               log=None, budgets: list[float] | None = None, progress: bool | None = None) -> list[Budget]:
    """Stream PRE and the SFTs tensor by tensor and the calibration data layer by layer (see stream.py).
    `budgets` (default: `opts.sparsity` alone) are the ρ to keep; with several, OUT holds one checkpoint
    per budget (OUT/sparsity-ρ), all from one pass: the calibration, the Hessians and each tensor's
    factorisation and scores are computed once. Returns one Budget per ρ, in order."""

    out = Path(out)
    budgets = parse_budgets(",".join(map(repr, budgets))) if budgets else [opts.sparsity]
    refuse_existing(out)
    method = methods.get(opts.method)
    opts = with_method_options(opts, method)  # its defaults where the caller gave none: the manifest records them
    pre_data = DeclaredOptions(opts, method).pre_data if method.pre_side else ()
    if method.pre_side and not pre_data:
        raise UsageError(f"--method {opts.method} weighs PRE by its own inputs on the pre-trained tasks, and "
                         "no --pre-data was given.",
                         "Pass --pre-data with prepared data of the tasks PRE knows (mfcli prepare digits …).")
    pre_files = [str(resolve_data_file(d, "train.jsonl")) for d in pre_data]
    pre_path = resolve_model_path(pre_spec)
    config = load_config(pre_path)
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
                sft_cfg = load_config(path).model_type
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
        run = StreamMerge(pre_path, pre, sources, sfts, config, family, opts, pre_files)
        return run.write(out, budgets, progress=show_progress() if progress is None else progress)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class Stream:
    """One model's pass over its own calibration data: an SFT on its target's, or PRE on the
    pre-trained tasks' (`--pre-data`, for RegMean and Fisher merging)."""

    ckpt: object  # stream.LazyCheckpoint
    data: list[str]  # calibration train.jsonl file(s)
    hessians: dict = field(default_factory=dict)  # linear module name → HessianAccumulator
    cache: list = field(default_factory=list)  # layer 0's captured inputs, then each layer's outputs
    grads: dict | None = None  # parameter key → ∇L (grafting)
    fisher: dict | None = None  # parameter key → diagonal empirical Fisher


class StreamMerge:
    """The streaming merge, in the order it runs: `capture` (each stream's inputs to decoder layer 0 and
    the non-decoder linears' Hessians, or whole-model gradients / Fishers), then per decoder layer
    `layer_hessians` and `merge_group`, then the rest of the tensors, the index and the manifest."""

    def __init__(self, pre_path, pre, sources, sfts, config, family, opts: TailorOptions, pre_files: list[str]):
        self.pre_path, self.pre, self.sources, self.opts = pre_path, pre, sources, opts
        self.config, self.family = config, family
        self.method = methods.get(opts.method)
        self.view = DeclaredOptions(opts, self.method)  # what the method reads, for what the driver gathers for it
        self.dec_prefix = family.decoder_layers + "."
        dec_norm = canonical_name(self.dec_prefix)
        self.layers = parse_layers(opts.layers)
        self.route = router(opts, family)
        self.layer_keys: dict[int, list[str]] = {}
        self.rest_keys = []
        for k in pre.keys():
            nk = canonical_name(k)
            if nk.startswith(dec_norm):
                self.layer_keys.setdefault(int(nk[len(dec_norm):].split(".")[0]), []).append(k)
            else:
                self.rest_keys.append(k)
        self.head = one_layer_model(config)
        self.layer_cls = type(family.module(self.head, "decoder_layers")[0])
        self.text_config = self.head.config.text_config  # with the attention implementation resolved
        self.linears = {n for n, m in self.head.named_modules()
                        if isinstance(m, torch.nn.Linear) and not n.startswith(self.dec_prefix)}
        needs = self.method.needs
        self.sfts = sfts
        # a method that weighs every model's inputs (RegMean) needs each SFT's, also on the linears that SFT
        # left unchanged (it takes part there with Δ = 0); the others only where the SFT changed something
        self.every_input = needs == "hessian" and self.method.pre_side
        self.streams = [Stream(s, [calibration_data(src, opts)] if needs and (self.every_input or self._changes(s))
                               else []) for src, s in zip(sources, sfts)]
        # PRE's stream: the tensors any SFT changed, seen through PRE's weights on PRE's own tasks
        self.pre_stream = Stream(pre, pre_files) if self.method.pre_side else None

    def _changes(self, sft) -> bool:
        return any(_changed(self.pre, sft, k) for k in self.pre.keys())

    def _changed_by_any(self, key: str) -> bool:
        return any(_changed(self.pre, s, key) for s in self.sfts)

    def _all_streams(self) -> list[Stream]:
        return self.streams + ([self.pre_stream] if self.pre_stream is not None else [])

    # ---- 1. capture ------------------------------------------------------------------------------
    def capture(self) -> None:
        for st in self._all_streams():
            if st.data:
                self._capture_one(st, is_pre=st is self.pre_stream)

    def _capture_one(self, st: Stream, is_pre: bool) -> None:
        opts, pre = self.opts, self.pre
        needs = self.method.needs
        if needs in ("gradient", "fisher"):  # whole-model quantities: one model in memory
            m = load_mllm(str(st.ckpt.path), device="cpu", dtype="float32")
            names = {n for n, _ in m.model.named_parameters()}
            if needs == "gradient":
                g = loss_gradients(m.model, calibration_batches(m.processor, st.data, opts.nsamples, opts.seed), names)
                st.grads = {pre.key_for(n): v for n, v in g.items()}
            else:
                f = fisher_diagonal(m.model, calibration_batches(m.processor, st.data, opts.nsamples, opts.seed,
                                                                 batch_size=1), names, self.view.fisher_estimate,
                                     opts.seed)
                if self.view.fisher_normalise:
                    f = normalise_fishers(f)
                st.fisher = {pre.key_for(n): v for n, v in f.items()}
            del m
            return
        processor = load_processor(str(st.ckpt.path))
        batches = calibration_batches(processor, st.data, opts.nsamples, opts.seed)
        head, family = self.head, self.family
        stream.load_params(head, st.ckpt, "")  # the non-decoder parts, and layer 0 (replaced below)
        changed = {n for n in self.linears if self._changed_by_any(pre.key_for(n + ".weight"))} \
            if is_pre or self.every_input else {n for n in self.linears if _changed(pre, st.ckpt, pre.key_for(n + ".weight"))}
        hooks = stream.linear_hooks(head, "", changed, st.hessians)
        try:
            stream.capture_first_layer_inputs(head, family.module(head, "decoder_layers"), batches, st.cache,
                                              lambda: self.layer_cls(self.text_config, layer_idx=0))
        finally:
            for h in hooks:
                h.remove()

    # ---- 2. one decoder layer's Hessians, each stream through its own weights ----------------------
    def layer_hessians(self, i: int, st: Stream, is_pre: bool) -> dict:
        H: dict = {}
        if not st.cache or (self.layers is not None and i not in self.layers):
            return H
        pre, prefix = self.pre, f"{self.dec_prefix}{i}."
        layer = self.layer_cls(self.text_config, layer_idx=i).eval()
        stream.load_params(layer, st.ckpt, prefix)
        owner = self._changed_by_any if is_pre or self.every_input else (lambda key: _changed(pre, st.ckpt, key))
        names = {f"{prefix}{n}" for n, m in layer.named_modules() if isinstance(m, torch.nn.Linear)
                 and owner(pre.key_for(f"{prefix}{n}.weight"))}
        hooks = stream.linear_hooks(layer, prefix, names, H)
        with torch.inference_mode():
            for j, (hs, kw) in enumerate(st.cache):
                o = layer(hs, **kw)
                st.cache[j] = ((o[0] if isinstance(o, tuple) else o), kw)  # this model's outputs feed layer i+1
        for h in hooks:
            h.remove()
        return H

    def head_hessians(self) -> None:
        """lm_head's inputs (the last layer's outputs through the final norm), where they are asked for:
        --compensate-head, or a method that weighs PRE's inputs too (RegMean)."""

        want = self.method.head_inputs(self.view) or self.method.pre_side
        key = self.pre.key_for(self.family.lm_head + ".weight")
        if not want or not self._changed_by_any(key):
            return
        for st in self._all_streams():
            if not st.cache or (st is not self.pre_stream and not self.every_input
                                and not _changed(self.pre, st.ckpt, key)):
                continue
            stream.load_params(self.head, st.ckpt, "")
            hooks = stream.linear_hooks(self.head, "", {self.family.lm_head}, st.hessians)
            norm, lm_head = self.family.module(self.head, "final_norm"), self.family.module(self.head, "lm_head")
            with torch.inference_mode():
                for hs, _ in st.cache:
                    lm_head(norm(hs))
            for h in hooks:
                h.remove()

    # ---- 3. one group of tensors, every budget --------------------------------------------------------
    def merge_group(self, keys: list[str], hessians: list[dict], pre_hessians: dict, shard: str,
                    outs: list[tuple[float, Path, dict, Report]]) -> None:
        pre = self.pre
        hessians = [{n: a for n, a in h.items() if a.n > 0} for h in hessians]  # modules that never ran
        pre_hessians = {n: a for n, a in pre_hessians.items() if a.n > 0}
        linear_of = {pre.key_for(n + ".weight"): n for h in hessians + [pre_hessians] for n in h}
        pre_state = {k: pre.get(k) for k in keys}
        sft_states = [{k: s.get(k) for k in keys} for s in self.sfts]
        grads = [st.grads or {} for st in self.streams] if self.method.needs == "gradient" else None
        fishers = [st.fisher or {} for st in self.streams] if self.method.needs == "fisher" else None
        pre_fisher = (self.pre_stream.fisher or {}) if self.pre_stream is not None else None
        caches: dict = {}  # per tensor: what a method keeps between budgets
        for rho, tmp, weight_map, report in outs:
            fused, rep = merge_state(pre_state, sft_states, replace(self.opts, sparsity=rho), hessians=hessians,
                                     grads=grads, linear_of=linear_of, route=self.route,
                                     pre_hessians=pre_hessians if self.method.pre_side else None,
                                     fishers=fishers, pre_fisher=pre_fisher, caches=caches,
                                     cuts=self.cuts.get(rho) if self.cuts else None)
            save_file({k: v.contiguous() for k, v in fused.items()}, str(tmp / shard), metadata={"format": "pt"})
            weight_map.update({k: shard for k in keys})
            report.tensors.extend(rep.tensors)
            report.outside_scope += rep.outside_scope
            del fused  # written: one budget's merged layer in memory at a time

    def whole_vector_cuts(self, budgets: list[float]) -> dict[float, list[float]]:
        """Each SFT's magnitude cut per budget, over every tensor the method merges (two extra streaming
        passes: merge/global_trim.py)."""

        keys = [k for k in self.pre.keys() if self.route(k) == "merge" and self._changed_by_any(k)]
        return whole_vector_cuts(keys, lambda k, i: self.sfts[i].get(k).float() - self.pre.get(k).float(),
                                 len(self.sfts), budgets)

    # ---- the whole pass ---------------------------------------------------------------------------
    def write(self, out: Path, budgets: list[float], progress: bool = False) -> list[Budget]:

        self.capture()
        self.cuts = self.whole_vector_cuts(budgets) if self.method.whole_vector(self.view) else {}
        with staged_dir(out) as root:
            dirs = [root] if len(budgets) == 1 else [root / budget_dir(r) for r in budgets]
            for d in dirs:
                d.mkdir(exist_ok=True)
            outs = [(rho, d, {}, Report()) for rho, d in zip(budgets, dirs)]
            for i in tqdm(sorted(self.layer_keys), desc=f"tailor {self.opts.method}", unit="layer",
                          disable=not progress, leave=False):
                layer_h = [self.layer_hessians(i, st, False) for st in self.streams]
                pre_h = self.layer_hessians(i, self.pre_stream, True) if self.pre_stream is not None else {}
                self.merge_group(self.layer_keys[i], layer_h, pre_h, f"model-{i + 1:05d}-layer.safetensors", outs)
            self.head_hessians()
            del self.head
            self.merge_group(self.rest_keys, [st.hessians for st in self.streams],
                             self.pre_stream.hessians if self.pre_stream is not None else {},
                             "model-00000-rest.safetensors", outs)
            summaries = [self._finish(d, rho, weight_map, report) for rho, d, weight_map, report in outs]
            if len(budgets) > 1:
                write_json_atomic(root / "budgets.json", {"schema": BUDGETS_SCHEMA, "budgets": {
                    budget_dir(r): {"sparsity": r, "kept_fraction": s["kept_fraction"]}
                    for r, s in zip(budgets, summaries)}})
        done = [Budget(rho, out if len(budgets) == 1 else out / budget_dir(rho), s) for rho, s in zip(budgets, summaries)]
        for b in done:
            check_coverage(self.pre_path, b.path)
        return done

    def _finish(self, tmp: Path, rho: float, weight_map: dict, report: Report) -> dict:
        """The index, PRE's config and processor files, the manifest."""

        total = sum(_nbytes(self.pre, k) for k in self.pre.keys())
        write_json_atomic(tmp / "model.safetensors.index.json", {"metadata": {"total_size": total},
                                                                  "weight_map": dict(sorted(weight_map.items()))})
        for f in Path(self.pre_path).iterdir():  # config, generation config, processor and tokenizer files
            if f.is_file() and not f.name.endswith(".safetensors") and f.name not in (
                    "mfcli.json", "model.safetensors.index.json", "trainer_state.json"):
                (tmp / f.name).write_bytes(f.read_bytes())
        summary = {**report.summary(), "budgeted": self.method.budgeted}  # whether `sparsity` is a budget

        pre_manifest = read_manifest(self.pre_path)
        m = Manifest("tailor", options=recorded_options(replace(self.opts, sparsity=rho)),
                     parents=[self.pre_path] + self.sources,
                     seed=self.opts.seed, metrics=summary,
                     finetune_defaults=getattr(pre_manifest, "finetune_defaults", {}), fingerprint=inherited(pre_manifest))
        for st in self.streams:
            for d in st.data:
                m.add_data(d)
        for d in (self.pre_stream.data if self.pre_stream is not None else []):
            m.add_data(d)
        write_json_atomic(tmp / "mfcli.json", asdict(m))
        return summary


_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}


def _nbytes(ckpt, key: str) -> int:
    shape, dtype = ckpt.meta(key)
    return int(torch.Size(shape).numel()) * _BYTES.get(dtype, 4)


def _tensor_index(ckpt: str | Path) -> dict[str, tuple]:

    out = {}
    for f in weight_files(ckpt):
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
        shutil.rmtree(out_dir, ignore_errors=True)
        raise MfcliError(f"internal: the merged checkpoint does not cover PRE's tensors ({diff[0]}).",
                         "Report this as a bug; nothing was written.")
