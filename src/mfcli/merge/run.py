"""`mfcli tailor`'s driver: PRE and the SFTs streamed tensor by tensor, calibration inputs run one decoder
layer at a time (stream.py), each group of tensors merged by the chosen method (fuse.py, methods/)
and written as its own shard.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from mfcli.errors import MfcliError
from mfcli.merge import methods
from mfcli.merge.calibration import calibration_batches, calibration_data, loss_gradients
from mfcli.merge.fuse import Report, merge_state
from mfcli.merge.options import TailorOptions


def router(opts: TailorOptions, family):
    """What each changed tensor gets (fuse.merge_state's route): outside --layers it reverts to PRE
    (the authors' code tailored layers 20-31 and reset the rest); outside --scope (scope.py) it keeps
    its fine-tuned value; otherwise the method merges it."""
    from mfcli.merge.scope import in_scope
    from mfcli.models.families import canonical_name

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

    from mfcli.io.checkpoint import refuse_existing
    from mfcli.models.families import family_of
    from mfcli.models.load import load_config, resolve_model_path
    from mfcli.merge import stream

    out = Path(out)
    refuse_existing(out)
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

    from mfcli.io.checkpoint import Manifest, read_manifest, staged_dir
    from mfcli.io.jsonl import write_json_atomic
    from mfcli.merge import stream
    from mfcli.models.families import canonical_name, one_layer_model

    dec_prefix = family.decoder_layers + "."
    dec_norm = canonical_name(dec_prefix)
    layers = parse_layers(opts.layers)
    route = router(opts, family)
    layer_keys: dict[int, list[str]] = {}
    rest_keys = []
    for k in pre.keys():
        nk = canonical_name(k)
        if nk.startswith(dec_norm):
            layer_keys.setdefault(int(nk[len(dec_norm):].split(".")[0]), []).append(k)
        else:
            rest_keys.append(k)

    head = one_layer_model(config)
    layer_cls = type(family.module(head, "decoder_layers")[0])
    text_config = head.config.text_config  # with the attention implementation resolved
    linears = {n for n, m in head.named_modules() if isinstance(m, torch.nn.Linear) and not n.startswith(dec_prefix)}
    needs = methods.get(opts.method).needs
    calib, caches, hess, grads = [], [], [], []
    for src, sft in zip(sources, sfts):
        H: dict = {}
        cache: list = []
        if needs and any(_changed(pre, sft, k) for k in pre.keys()):
            data = calibration_data(src, opts)
            calib.append(data)
            if needs == "gradient":  # the loss gradient needs the whole model: one model in memory
                from mfcli.models.load import load_mllm

                m = load_mllm(src, device="cpu", dtype="float32")
                names = {n for n, _ in m.model.named_parameters()}
                g = loss_gradients(m.model, calibration_batches(m.processor, data, opts.nsamples, opts.seed), names)
                grads.append({pre.key_for(n): v for n, v in g.items()})
                del m
            else:
                from mfcli.models.load import load_processor

                processor = load_processor(str(sft.path))
                batches = calibration_batches(processor, data, opts.nsamples, opts.seed)
                stream.load_params(head, sft, "")  # the non-decoder parts, and layer 0 (replaced below)
                changed = {n for n in linears if _changed(pre, sft, pre.key_for(n + ".weight"))}
                hooks = stream.linear_hooks(head, "", changed, H)
                family.module(head, "decoder_layers")[0] = stream._Catcher(cache)
                try:
                    with torch.inference_mode():
                        for b in batches:
                            try:
                                head(**{k: v for k, v in b.items() if k != "labels"}, use_cache=False)
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
                                     hessians=hessians, grads=grads or None, linear_of=linear_of, route=route)
            save_file({k: v.contiguous() for k, v in fused.items()}, str(tmp / shard), metadata={"format": "pt"})
            weight_map.update({k: shard for k in keys})
            report.tensors.extend(rep.tensors)
            report.outside_scope += rep.outside_scope

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
            # lm_head through the Hessian path only when asked (--compensate-head): the paper gives no basis
            if cache and opts.compensate_head and _changed(pre, s, pre.key_for(family.lm_head + ".weight")):
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
        m = Manifest("tailor", options=asdict(opts), parents=[pre_path] + sources, seed=opts.seed, metrics=summary,
                     finetune_defaults=(read_manifest(pre_path) or {}).get("finetune_defaults") or {})
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
