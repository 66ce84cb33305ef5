"""Fine-tuning methods. Each module says what trains (and, for MDGD, how the update is formed);
the shared loop in mfcli.train.loop does the rest. This is the registry."""

from __future__ import annotations

from mfcli.errors import UsageError, did_you_mean


def _registry():
    from mfcli.train.methods import clip, full, lastn, linear, lora, mdgd

    return {
        "linear": linear.Linear(),  # EMT's "linear fine-tuning": the projector only
        "lora": lora.Lora(),  # EMT / LLaVA: projector + LoRA on the language model
        "lastn": lastn.LastN(),  # Model Tailor (12 of 32 layers), MDGD (6 of 32) + projector
        "full": full.Full(),  # the whole language model + projector
        "mdgd": mdgd.Mdgd(),  # MDGD Eq. 5-9
        "mdgd-gm": mdgd.MdgdGm(),  # MDGD Eq. 10-11
        "clip": clip.Clip(),  # EMT §3.2: a CLIP vision encoder as a classifier
    }


METHODS = ("linear", "lora", "lastn", "full", "mdgd", "mdgd-gm", "clip")  # the registry's names, without importing it


def get_method(name: str):
    if name not in METHODS:
        raise UsageError(f"unknown method '{name}'.", did_you_mean(name, METHODS))
    return _registry()[name]
