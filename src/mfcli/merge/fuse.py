"""One group of tensors merged in memory: Θ_fused = Θ_pre + patch, tensor by tensor, with a report.

Works on plain state dicts (testable with randn); the streaming driver (run.py) calls it one decoder
layer at a time.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch

from mfcli.errors import MfcliError
from mfcli.merge import methods
from mfcli.merge.contract import DeclaredOptions, TensorReport, with_method_options  # noqa: F401  (TensorReport re-exported)
from mfcli.merge.global_trim import whole_vector_cuts
from mfcli.merge.options import TailorOptions


@dataclass
class Report:
    tensors: list = field(default_factory=list)
    outside_scope: int = 0  # changed parameters that kept their fine-tuned value (--scope), not in the budget

    def summary(self) -> dict:
        changed = sum(t.changed for t in self.tensors)
        kept = sum(t.kept for t in self.tensors)
        return {"changed_params": changed, "kept_params": kept, "kept_fraction": kept / changed if changed else 0.0,
                "outside_scope_params": self.outside_scope, "tensors": [asdict(t) for t in self.tensors]}


def merge_state(pre: dict, sfts: list[dict], opts: TailorOptions, *, hessians: list[dict] | None = None,
                grads: list[dict] | None = None, linear_of: dict[str, str] | None = None,
                route=None, pre_hessians: dict | None = None, fishers: list[dict] | None = None,
                pre_fisher: dict | None = None, caches: dict | None = None,
                cuts: list[float] | None = None) -> tuple[dict, Report]:
    """The fused state dict and a per-tensor report.

    hessians: per SFT, {linear module name: HessianAccumulator}; linear_of maps a weight's parameter
    name to its module name (the Hessian key). grads: per SFT, {parameter name: ∇L}. route(name)
    says what a changed tensor gets: "merge" (the method; the default), "pre" (reverted: outside
    --layers) or "sft" (the mean fine-tuned value: outside --scope). pre_hessians, fishers and
    pre_fisher: PRE's Hessians on the pre-trained tasks' data, each SFT's diagonal Fisher and PRE's
    (RegMean, Fisher merging). caches: tensor name → a dict the method may keep between budgets. cuts:
    per SFT, the whole task vector's magnitude cut (a method that trims the whole vector); computed here
    over `pre` when not given — the streaming driver gives the cuts of the whole model."""
    method = methods.get(opts.method)
    opts = with_method_options(opts, method)
    report = Report()
    declared = DeclaredOptions(opts, method)  # all a method may read: the run's options and its own
    if method.whole_vector(declared) and cuts is None:
        keys = [k for k in pre if route is None or route(k) == "merge"]
        cuts = whole_vector_cuts(keys, lambda k, i: sfts[i][k].float() - pre[k].float(), len(sfts),
                                 [opts.sparsity])[opts.sparsity]
    out = {}
    for name, w_pre in pre.items():
        deltas = [s[name].float() - w_pre.float() for s in sfts]
        for i, d in enumerate(deltas):
            if not torch.isfinite(d).all():
                raise MfcliError(f"tensor '{name}' holds NaN or inf (in PRE or SFT #{i + 1}).",
                                 "Check that checkpoint; mfcli will not merge non-finite weights.")
        changed = torch.zeros_like(deltas[0], dtype=torch.bool)
        for d in deltas:
            changed |= d != 0
        where = route(name) if route is not None else "merge"
        if not changed.any() or where == "pre":
            out[name] = w_pre.clone()  # unchanged, or outside --layers: the pre-trained value
            continue
        mean_delta = sum(deltas) / len(deltas)
        if where == "sft":  # outside --scope: the fine-tuned value, not counted in the budget
            out[name] = (w_pre.float() + mean_delta).to(w_pre.dtype)
            report.outside_scope += int(changed.sum())
            continue
        t0 = time.perf_counter()
        key = (linear_of or {}).get(name)
        pre_h = (pre_hessians or {}).get(key)
        inputs = methods.TensorInputs(
            name, deltas,
            hessians=[h[key].H if key in h else None for h in hessians] if hessians else [],
            grads=[g.get(name) for g in grads] if grads else [],
            tokens=[h[key].n if key in h else 0 for h in hessians] if hessians else [],
            fishers=[f.get(name) for f in fishers] if fishers else [],
            pre_hessian=pre_h.H if pre_h is not None else None, pre_tokens=pre_h.n if pre_h is not None else 0,
            pre_fisher=(pre_fisher or {}).get(name),
            cache=caches.setdefault(name, {}) if caches is not None else {}, cuts=cuts)
        rep = TensorReport(name, int(changed.sum()), 0, "salience")
        patch = method.patch(inputs, declared, rep)  # sets rep.kept (and the Hessian path's errors)
        out[name] = (w_pre.float() + patch).to(w_pre.dtype)
        if not torch.isfinite(out[name]).all():
            raise MfcliError(f"tensor '{name}' became NaN/inf while merging.", "Raise --damp, or check the inputs.")
        rep.patch_l1, rep.delta_l1 = float(patch.abs().sum()), float(mean_delta.abs().sum())
        rep.max_ratio = float(patch.abs().max() / mean_delta.abs().max().clamp_min(1e-30))
        rep.seconds = round(time.perf_counter() - t0, 4)
        report.tensors.append(rep)
    return out, report
