"""LoRA on the language model + the projector, through peft (EMT's "LoRA fine-tuning").

Target modules are matched only under the language model's decoder layers: a bare `q_proj,v_proj`
would also hit the CLIP tower's attention, which EMT keeps frozen.
"""

from __future__ import annotations

import re

from mfcli.errors import MfcliError, UsageError
from mfcli.io.checkpoint import write_checkpoint
from mfcli.train.methods.base import Method
from mfcli.train.methods.contract import RunEnd, register
from mfcli.train.methods.shared_options import LoraOptions


@register("lora", summary="LoRA on the language model + the projector (peft)", adapter=True, options=LoraOptions)
class Lora(Method):
    default_lr = 2e-4  # LLaVA-1.5's LoRA learning rate
    default_projector_lr = 2e-5  # LLaVA-1.5's mm_projector_lr with LoRA

    def target_regex(self, family, own: LoraOptions) -> str:
        names = [t.strip() for t in own.lora_targets.split(",") if t.strip()]
        if not names:
            raise UsageError("--lora-targets is empty.", "Name modules, e.g. q_proj,v_proj.")
        return rf"{re.escape(family.decoder_layers)}\.\d+\..*\b({'|'.join(map(re.escape, names))})"

    def prepare(self, model, family, opts, resume_from=None):
        from peft import LoraConfig, PeftModel, get_peft_model

        projector = family.projector.split(".")[-1]
        own = opts.method_options
        if resume_from:
            model = PeftModel.from_pretrained(model, resume_from, is_trainable=True)
        else:
            config = LoraConfig(r=own.lora_r, lora_alpha=own.lora_alpha, lora_dropout=own.lora_dropout,
                                target_modules=self.target_regex(family, own), modules_to_save=[projector])
            try:
                model = get_peft_model(model, config)
            except ValueError as e:
                if "not found" in str(e).lower() or "target modules" in str(e).lower():
                    raise MfcliError(f"--lora-targets {own.lora_targets} matches no module of the language model.",
                                     "Use names like q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj.") from None
                raise
        lr = opts.lr or self.default_lr
        plr = own.projector_lr or self.default_projector_lr
        proj, rest = [], []
        for n, p in model.named_parameters():
            if p.requires_grad:
                (proj if f"{projector}." in n else rest).append((n, p))
        return model, [{"params": [p for _, p in rest], "lr": lr, "names": [n for n, _ in rest]},
                       {"params": [p for _, p in proj], "lr": plr, "names": [n for n, _ in proj]}]

    def save(self, model, processor, d, parent: str, state_dict: dict | None = None) -> None:  # never sharded
        model.save_pretrained(d)
        processor.save_pretrained(d)
        import json

        cfg = d / "adapter_config.json"  # point the adapter at the checkpoint it was trained on
        c = json.loads(cfg.read_text())
        c["base_model_name_or_path"] = parent
        cfg.write_text(json.dumps(c, indent=2))

    def finish(self, end: RunEnd) -> None:
        """--merge: also write DIR/merged, the adapter folded into a full checkpoint."""
        if not end.main_process or not end.opts.method_options.merge:
            return

        merged = end.model.merge_and_unload()
        write_checkpoint(end.out / "merged", lambda d: (merged.save_pretrained(d), end.processor.save_pretrained(d)),
                         end.manifest("finetune --merge"), overwrite=True)
