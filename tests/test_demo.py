"""`mfcli demo`: every step of the three papers' pipeline on pico, a report at the end, and a run stopped
half-way finishing only what is missing."""

import os
import re
import signal
import subprocess
import sys

from conftest import run_cli

STEPS = ["emt tiny", "emt tiny-clip", "finetune linear", "finetune lora", "finetune full", "tailor tailor",
         "tailor dare", "tailor task-arithmetic", "finetune full-animals", "tailor fusion", "finetune mdgd",
         "finetune mdgd-gm", "rank"]
MODELS = ["tiny", "tiny-clip", "finetune/linear/epoch-1", "finetune/lora/epoch-1", "finetune/full/epoch-1",
          "tailor/tailor", "tailor/dare", "tailor/task-arithmetic", "finetune/full-animals/epoch-1",
          "tailor/fusion", "finetune/mdgd/epoch-1", "finetune/mdgd-gm/epoch-1"]


def states(stderr: str) -> dict[str, str]:
    """'demo [ 12 s] finetune lora (lora, 1 epochs): running' → {'finetune lora': 'running'}."""
    out = {}
    for m in re.finditer(r"^demo \[\s*\d+ s\] (.+?)(?: \(.*\))?: (running|done already)$", stderr, re.M):
        out[m.group(1)] = m.group(2)
    return out


def test_demo_quick_runs_every_step_and_resumes_after_ctrl_c(pico, tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "mfcli", "demo", "--quick", "--out", str(out)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:  # stop it like a user would, in the middle of a fine-tune
        seen.append(line)
        if "finetune lora" in line:
            proc.send_signal(signal.SIGINT)
            break
    proc.communicate(timeout=300)
    assert proc.returncode == 130, "".join(seen)
    assert not list(out.rglob("*.partial-*"))  # nothing half-written left behind
    assert not (out / "report.md").exists()

    r = run_cli("demo", "--quick", "--out", out)
    assert r.returncode == 0, r.stderr
    st = states(r.stderr)
    assert st["emt tiny"] == st["emt tiny-clip"] == st["finetune linear"] == "done already"
    assert all(st[s] == "running" for s in STEPS[3:]), st  # from the interrupted step on
    assert str(out / "report.html") in r.stdout
    md = (out / "report.md").read_text()
    for model in MODELS:
        assert f"| {out / model} |" in md or f"| {model} |" in md, model
    for part in ("Effective rank", "counting (target)", "animals (target)", "digits (pre)"):
        assert part in md, part
    assert (out / "report.html").read_text().startswith("<!doctype html>")

    # a finished demo re-run does nothing but the report; a missing output is redone, alone
    for p in (out / "tailor" / "dare", out / "eval" / "dare.judged.jsonl"):
        subprocess.run(["rm", "-rf", str(p)], check=True)
    r = run_cli("demo", "--quick", "--out", out)
    assert r.returncode == 0, r.stderr
    st = states(r.stderr)
    assert {s for s, v in st.items() if v == "running"} == {"tailor dare", "emt dare"}, st


def test_demo_refuses_a_pretrained_task_as_target(tmp_path):
    r = run_cli("demo", "--target", "digits", "--out", tmp_path / "d")
    assert r.returncode == 2 and "'digits' is not one of tiny's target tasks" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "d").exists()
