"""The record kinds (kinds/base.py says what one is). To add one: a module here that registers a
`RecordKind`, one import line below, and — when no judge scores it yet — a judge registered with `kind=`
its name (eval/judges/). Imported in the order the kinds are listed."""

from mfcli.kinds import classification, vqa, caption, choice, text  # noqa: F401  (registers each kind)
from mfcli.kinds.base import KINDS, QaFields, QaRow, RecordKind, detect_kind, kind_names, kind_of, register

CLASSIFICATION = classification.Classification.name
VQA = vqa.Vqa.name
CAPTION = caption.Caption.name
CHOICE = choice.Choice.name
TEXT = text.Text.name

__all__ = ["KINDS", "CAPTION", "CHOICE", "CLASSIFICATION", "TEXT", "VQA", "QaFields", "QaRow", "RecordKind", "detect_kind",
           "kind_names", "kind_of", "register"]
