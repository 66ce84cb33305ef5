"""examples/: the GPU pipelines, run end to end with MODEL=tiny (pico here) and the built-in tasks, so
the scripts cannot rot. Each ends in OUT/report.html and OUT/report.md; a re-run redoes nothing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import report_section

pytestmark = pytest.mark.slow  # each example script end to end

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
QUICK = {"MODEL": "tiny", "EPOCHS": "1", "LIMIT": "20", "NSAMPLES": "8"}


def run(script: str, out: Path, **env) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # the venv's mfcli
    return subprocess.run(["bash", str(EXAMPLES / script)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PATH": path, "OUT": str(out), **QUICK, **env})


def rows(report: Path) -> dict[str, str]:
    """model name → its row in the report's first table."""
    table = report_section(report.read_text(), "Scores per task")
    return {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}


@pytest.mark.parametrize("script, env, models, columns", [
    ("emt_vs_vision_encoder.sh", dict(CLIP="tiny-clip", DATASETS="digits counting"),
     ["tiny", "tiny-clip"], ["digits", "counting"]),
    ("emt_forgetting.sh", dict(DATASETS="digits counting"),
     ["tiny", "digits-linear/epoch-1", "digits-lora/epoch-1", "counting-linear/epoch-1", "counting-lora/epoch-1"],
     ["digits (target)", "counting (target)"]),
    ("tailor_caption.sh", dict(TARGET="scene-caption", KNOWN="digits"),
     ["tiny", "sft/epoch-1", "tailor/tailor", "tailor/dare", "tailor/task-arithmetic", "tailor/tailor-paper",
      "tailor/tailor-no-compensation"], ["digits (pre)", "scene-caption (target, CIDEr)"]),
    ("mdgd.sh", dict(TARGET="counting", KNOWN="digits", METHODS="lora mdgd mdgd-gm"),
     ["tiny", "lora/epoch-1", "mdgd/epoch-1", "mdgd-gm/epoch-1"], ["digits (pre)", "counting (target)"]),
])
def test_example_pipeline_runs_end_to_end_on_tiny(pico, tmp_path, script, env, models, columns):
    out = tmp_path / "out"
    r = run(script, out, **env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "report.html").read_text().startswith("<!doctype html>")
    table = rows(out / "report.md")
    assert set(models) <= set(table), (models, list(table))
    header = [x for x in report_section((out / "report.md").read_text(), "Scores per task").splitlines() if x.startswith("| model")][0]
    assert all(c in header for c in columns), header
    if script == "mdgd.sh":
        assert "Effective rank" in (out / "report.md").read_text()
        again = run(script, out, **env)  # resumable: everything is there, only the report is redrawn
        assert again.returncode == 0 and "finetune" not in again.stderr and "emt " not in again.stderr


def test_examples_refuse_missing_settings(tmp_path):
    r = run("tailor_caption.sh", tmp_path / "o", TARGET="")
    assert r.returncode != 0 and "set TARGET" in r.stderr


# the README's walk ("From data to a model, step by step"), run as written but for these lines: they need
# a GPU, the hub, an API key or the user's own files
README_SKIP = ("path/to/", "labels.csv", "cifar10", "llava", "accelerate launch", "torchrun", "vllm serve",
               "OPENAI_API_KEY", "okvqa", "answers.jsonl", "paper_numbers", " MODEL ", "merge-preds", "python -c",
               ". .venv")


def readme_walk() -> list[str]:
    """The shell lines of the README's walk, in order, continuation lines joined."""
    text = (EXAMPLES.parent / "README.md").read_text().split("## From data to a model, step by step", 1)[1]
    text = text.split("\n## ", 1)[0]
    lines, block = [], False
    for raw in text.splitlines():
        if raw.startswith("```"):
            block = not block
            continue
        if block:
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + raw.strip()
            else:
                lines.append(raw.split("  #")[0].strip() if not raw.lstrip().startswith("#") else "")
    return [x for x in lines if x and not any(s in x for s in README_SKIP)]


def test_the_readme_walk_runs_as_written(pico, tmp_path):
    """Issue 44: every command of the README's walk that can run here does, at small sizes (each prepared
    set limited to 100 examples), in one directory, in order — and ends in a report naming the
    fine-tunes. It would have caught `rank --data data/digits data/animals` reading a data set as a model."""
    commands = readme_walk()
    assert any(c.startswith("mfcli rank") for c in commands) and any(c.startswith("mfcli report") for c in commands)
    script = ["set -euo pipefail"]
    for c in commands:
        if c.startswith("mfcli prepare"):
            c += " --limit 100"
        script.append(c)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    r = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, capture_output=True, text=True, timeout=1500,
                       env={**os.environ, "PATH": path})
    assert r.returncode == 0, (r.stderr[-3000:], "\n".join(script))
    assert "Traceback" not in r.stderr
    report = (tmp_path / "runs" / "report.html").read_text()
    for model in ("lora/epoch-3", "tailored"):
        assert model in report, model
    assert (tmp_path / "runs" / "full" / "best").is_dir() and (tmp_path / "runs" / "rank.jsonl").is_file()
