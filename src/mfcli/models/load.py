"""Resolve a model argument (dir, hub id, `tiny`, `tiny-clip`) and load it with transformers' own classes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mfcli.errors import MfcliError, UsageError
from mfcli.hub import ensure_hub_reachable
from mfcli.models.families import family_of

BUILTIN = ("tiny", "tiny-clip", "tiny-qwen2vl", "smol", "smol-base")  # zoo.ZOO's names (tests/test_models.py holds them equal)
DTYPES = ("auto", "float32", "bfloat16", "float16")


def quiet_libraries() -> None:
    """transformers' own bars ("Loading weights") and advisory warnings stay out of mfcli's output; with
    MFCLI_DEBUG=1 everything shows. Hub downloads keep their bars (a 14 GB download wants one)."""
    import os

    if os.environ.get("MFCLI_DEBUG", "") not in ("", "0"):
        return
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MfcliError(f"--device {device} asked for, but no CUDA device is available.", "Use --device cpu.")
    return device


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype not in DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, got '{dtype}'.")
    if dtype == "auto":  # bf16 on CUDA as the papers train; fp32 on CPU, where bf16 is slow
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def check_weights(path: Path, allow_pickle: bool) -> None:
    """safetensors only, unless the user opts in: unpickling a .bin runs arbitrary code."""
    if any(path.glob("*.safetensors")) or (path / "adapter_model.safetensors").is_file():
        return
    pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
    if pickled and not allow_pickle:
        raise MfcliError(f"{path} holds only pickle weights ({pickled[0]}); loading them can run arbitrary code.",
                         "Convert them to safetensors, or pass --allow-pickle if you trust the source.")
    if not pickled:
        raise MfcliError(f"{path} has no model weights (*.safetensors).",
                         "Point at a Hugging Face checkpoint directory.")


def checkpoints_inside(path: Path) -> list[str]:
    """The names of the checkpoint directories directly inside `path` (a run's epoch-N/, best/, a sweep's
    sparsity-RHO/), epochs in number order."""
    import re

    names = [d.name for d in path.iterdir() if d.is_dir() and ((d / "config.json").is_file()
                                                              or (d / "adapter_config.json").is_file())]
    return sorted(names, key=lambda n: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", n)])


def resolve_model_path(spec: str, *, allow_pickle: bool = False) -> str:
    """A local directory, a built-in name (built and cached on first use), or a hub id."""
    if spec in BUILTIN:
        from mfcli.zoo import builtin_path

        return str(builtin_path(spec))
    if spec.startswith(("http://", "https://")):
        raise MfcliError(f"'{spec}' is a server address; this needs the model's weights (hidden states, "
                         "logits or a CLIP's embeddings), which an endpoint does not return.",
                         "Pass the model's directory or hub id; only `mfcli emt MODEL DATA --endpoint URL` "
                         "asks a served model.")
    path = Path(spec)
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            if (path / "eval.jsonl").is_file() or (path / "dataset.json").is_file():
                raise MfcliError(f"{path} is a prepared data set, not a model.",
                                 "Pass data where the command takes DATA (for rank: --data, once per data set: "
                                 "--data data/digits --data data/animals).")
            inside = checkpoints_inside(path)
            if inside:  # a fine-tuning run or a budget sweep: its checkpoints are one level down
                shown = ", ".join(f"{path / d}/" for d in inside[:4]) + (" …" if len(inside) > 4 else "")
                raise MfcliError(f"{path} is a run directory, not a checkpoint: it holds {shown}.",
                                 "Pass one of those checkpoints (epoch-N/, best/, sparsity-RHO/).")
            raise MfcliError(f"{path} is not a model directory (no config.json).",
                             "Point at a Hugging Face checkpoint directory, or use `tiny`.")
        check_weights(path, allow_pickle)
        return str(path)
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise MfcliError(f"model '{spec}' is not a directory.", "Give a checkpoint directory, a hub id, or `tiny`.")

    ensure_hub_reachable(spec, kind="model")
    return spec


def model_type_of(path: str | Path) -> str | None:
    """A checkpoint directory's `model_type` from its config.json, without loading transformers (None
    where there is no config): the one place mfcli reads a config by hand, for a cheap question."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        return None
    import json

    return json.loads(cfg.read_text(encoding="utf-8")).get("model_type")


def load_config(path: str, *, trust_remote_code: bool = False):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)


def load_processor(path: str, *, trust_remote_code: bool = False, model_type: str | None = None):
    """AutoProcessor; for Qwen2-VL without torchvision, its image-only stand-in (models/processors.py)."""
    from transformers import AutoProcessor

    if model_type is None:
        model_type = getattr(load_config(path, trust_remote_code=trust_remote_code), "model_type", None)
    if model_type == "qwen2_vl":
        from transformers.utils import is_torchvision_available

        if not is_torchvision_available():
            from mfcli.models.processors import IMAGE_ONLY

            return IMAGE_ONLY[model_type].from_pretrained(path)
    return AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)


@dataclass
class Loaded:
    model: object  # a transformers PreTrainedModel, in eval mode
    processor: object
    family: object  # mfcli.models.families.Family (None for CLIP)
    path: str
    device: str


def load_mllm(spec: str, *, device: str = "auto", dtype: str = "auto", allow_pickle: bool = False,
              trust_remote_code: bool = False) -> Loaded:
    """Load a LLaVA-family model + processor through AutoModelForImageTextToText / AutoProcessor.

    A peft adapter directory loads its base (`base_model_name_or_path`, which may itself be `tiny`)
    and merges the adapter into it for generation.
    """
    quiet_libraries()
    path = resolve_model_path(spec, allow_pickle=allow_pickle)
    adapter = Path(path) / "adapter_config.json"
    if adapter.is_file():
        return _load_adapter(Path(path), device=device, dtype=dtype, allow_pickle=allow_pickle,
                             trust_remote_code=trust_remote_code)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    from transformers import AutoConfig, AutoModelForImageTextToText
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars would drown our own output

    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    family = family_of(config)
    model = AutoModelForImageTextToText.from_pretrained(
        path, dtype=torch_dtype, trust_remote_code=trust_remote_code, use_safetensors=not allow_pickle)
    processor = load_processor(path, trust_remote_code=trust_remote_code, model_type=config.model_type)
    model.to(dev).eval()
    return Loaded(model, processor, family, path, dev)


def _load_adapter(path: Path, **kw) -> Loaded:
    import json

    base = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not base:
        raise MfcliError(f"{path}/adapter_config.json names no base_model_name_or_path.",
                         "Set it to the base checkpoint the adapter was trained on.")
    loaded = load_mllm(base, **kw)
    from peft import PeftModel

    model = PeftModel.from_pretrained(loaded.model, str(path)).merge_and_unload()
    if (path / "processor_config.json").is_file() or (path / "tokenizer_config.json").is_file():
        loaded.processor = load_processor(str(path), model_type=loaded.model.config.model_type)
    loaded.model, loaded.path = model.eval(), str(path)
    return loaded


def load_clip(spec: str, *, device: str = "auto", dtype: str = "auto", allow_pickle: bool = False) -> Loaded:
    """Load a CLIP dual encoder (the vision-encoder baseline and the `clip` judge)."""
    quiet_libraries()
    path = resolve_model_path(spec, allow_pickle=allow_pickle)
    dev = resolve_device(device)
    from transformers import AutoProcessor, CLIPModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = CLIPModel.from_pretrained(path, dtype=resolve_dtype(dtype, dev), use_safetensors=not allow_pickle)
    processor = AutoProcessor.from_pretrained(path)
    model.to(dev).eval()
    return Loaded(model, processor, None, path, dev)
