"""What `mfcli report` reads, one reader per module behind the registry in `base.py`: judged JSONL,
summary JSON, rank JSONL, a run's watch.jsonl, checkpoint and run directories, a train_log.jsonl, a
model,task,score table, lmms-eval's results and a report's own JSON. A new input format is one module
here that calls `register` (and one import line below, where its place in the order is decided), plus
its test.
"""

from __future__ import annotations

from mfcli.errors import MfcliError
from mfcli.report.inputs.base import INPUTS, Found, ReportInput, register, reported_schemas  # noqa: F401
from mfcli.report.results import Results

# importing a reader registers it; the first one (in this order) that claims an input reads it: a
# checkpoint before a run directory (a run's epoch-K dirs are checkpoints), a train_log.jsonl by name
# before any JSONL, tagged files before untagged, judged records before a plain table
from mfcli.report.inputs import runs, report_json, lmms_eval, summary, watch, rank, judged, table  # noqa: E402,F401

WHAT_REPORT_READS = "judged files, summaries, rank files, watch files, run dirs, tables or a report's JSON"


def _unknown_schema(found: Found) -> None:
    """An mfcli-tagged file no reader declares: from a newer mfcli, or a file report never reads."""
    tag = found.schema if found.path.is_file() and found.suffix in (".json", ".jsonl") else None
    if tag and tag.startswith("mfcli.") and tag not in reported_schemas():
        where = f"{found.path}:1" if found.suffix == ".jsonl" else str(found.path)
        raise MfcliError(f"{where}: schema '{tag}' is not one this mfcli reports on ({', '.join(reported_schemas())}).",
                         "Re-create the file with this version of mfcli, or upgrade mfcli.")


def read_input(spec: str, res: Results) -> str:
    """Read one INPUT with the first registered reader that claims it; returns the reader's name."""
    found = Found(spec)
    path = found.path
    if not path.exists():
        raise MfcliError(f"{spec}: no such file or directory.", f"Pass {WHAT_REPORT_READS}.")
    _unknown_schema(found)
    for reader in INPUTS.values():
        if reader.claims(found):
            reader.read(found, res)
            return reader.name
    if path.is_dir():
        raise MfcliError(f"{spec}: a directory with neither mfcli.json nor train_log.jsonl.",
                         "Pass a checkpoint or run directory, or the files inside it.")
    if found.suffix == ".json":
        raise MfcliError(f"{spec}: a JSON file that is neither an mfcli summary, a report nor lmms-eval results.",
                         "See docs/formats.md for what report reads.")
    if found.suffix == ".jsonl":
        raise MfcliError(f"{spec}: JSONL that is neither judged records, rank records, a watch nor a "
                         "model,task,score table.", "Judge predictions first (mfcli judge), or see docs/formats.md.")
    raise MfcliError(f"{spec}: cannot tell what this is from its extension '{path.suffix}'.",
                     "report reads " + "; ".join(r.summary for r in INPUTS.values()) + ".")
