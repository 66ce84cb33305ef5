"""`mfcli demo`: every step of the three papers' pipeline on pico, a report at the end, and a run stopped
half-way finishing only what is missing."""

import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import report_section, run_cli

pytestmark = pytest.mark.slow  # `demo --quick` end to end, stopped and resumed, in subprocesses

STEPS = ["emt tiny", "emt tiny-clip", "finetune linear", "finetune lora", "finetune full", "tailor tailor",
         "tailor dare", "tailor task-arithmetic", "finetune mdgd", "finetune mdgd-gm", "rank",
         "finetune full-animals", "tailor fusion", "emt fusion"]
MODELS = ["tiny", "tiny-clip", "finetune/linear/epoch-1", "finetune/lora/epoch-1", "finetune/full/epoch-1",
          "tailor/tailor", "tailor/dare", "tailor/task-arithmetic", "finetune/mdgd/epoch-1",
          "finetune/mdgd-gm/epoch-1"]
FUSION = ["tiny", "finetune/full/epoch-1", "finetune/full-animals/epoch-1", "tailor/fusion"]


def scores_table(report) -> str:
    """The report's score table (after its summary), title line first."""
    return report_section(report.read_text(), "Scores per task")


def models_in(report) -> list[str]:
    table = scores_table(report)
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]  # after the header
    return [line.split("|")[1].strip() for line in rows]


def states(stderr: str) -> dict[str, str]:
    """'demo [ 12 s] finetune lora (lora, 1 epochs): running' → {'finetune lora': 'running'}."""
    out = {}
    for m in re.finditer(r"^demo \[\s*\d+ s\] (.+?)(?: \(.*\))?: (running|done already)$", stderr, re.M):
        out[m.group(1)] = m.group(2)
    return out


def test_demo_quick_runs_every_step_and_resumes_after_ctrl_c(pico, tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "mfcli", "demo", "--quick", "--out", str(out)]
    # as a command started in a terminal: SIGINT at its default even where the test runner ignores it
    # (CI runs in the background, and children inherit an ignored SIGINT)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in proc.stderr:  # stop it like a user would, in the middle of a fine-tune
        seen.append(line)
        if "finetune lora" in line:
            proc.send_signal(signal.SIGINT)
            break
    _, rest = proc.communicate(timeout=300)
    first = "".join(seen) + rest
    assert proc.returncode == 130, first
    assert not list(out.rglob("*.partial-*"))  # nothing half-written left behind
    assert not (out / "report.md").exists()
    # the step the signal stopped is the last one the first run started: on a loaded machine that may
    # be one after `finetune lora` (the child is ahead of the reader), but never the end of the demo
    started = [s for s in states(first) if s in STEPS]
    stopped = STEPS.index(started[-1])
    assert 3 <= stopped < len(STEPS) - 1, first

    r = run_cli("demo", "--quick", "--out", out)
    assert r.returncode == 0, r.stderr
    st = states(r.stderr)
    assert all(st[s] == "done already" for s in STEPS[:stopped]), st  # finished before the Ctrl-C
    assert all(st[s] == "running" for s in STEPS[stopped + 1:]), st  # never started
    # the stopped step itself is redone unless it had finished and saved before the stop took effect
    assert str(out / "report.html") in r.stdout
    md = (out / "report.md").read_text()
    assert models_in(out / "report.md") == MODELS
    for part in ("Effective rank", "counting (target)", "digits (pre)"):
        assert part in md, part
    assert "animals" not in scores_table(out / "report.md")  # the single-target study never sees the second target
    assert sorted(models_in(out / "fusion.md")) == sorted(FUSION)
    header = next(x for x in scores_table(out / "fusion.md").splitlines() if x.startswith("| model"))
    assert "counting (target)" in header and "animals (target)" in header and "digits (pre)" in header
    for stem in ("report", "fusion"):
        assert (out / f"{stem}.html").read_text().startswith("<!doctype html>")

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


def test_a_ctrl_c_a_library_swallowed_stops_the_demo_at_its_next_step(tmp_path):
    # a KeyboardInterrupt caught inside some library (a bare `except:` while it imports) must not let the
    # demo run on: the handler notes the request and the next step boundary raises it again
    import pytest

    from mfcli.demo import Demo, DemoOptions

    demo = Demo(tmp_path / "d", DemoOptions(), log=lambda m: None)
    assert demo.step("emt tiny", False)
    try:
        demo._on_sigint(2, None)
    except KeyboardInterrupt:
        pass  # swallowed, as a library might
    with pytest.raises(KeyboardInterrupt):
        demo.step("finetune lora", False)
