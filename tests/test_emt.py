import json
import shutil
import subprocess
import sys

import pytest

from conftest import run_cli
from mfcli.errors import MfcliError
from mfcli.eval.emt import EmtOptions, run_emt
from mfcli.eval.judges import make_judge
from mfcli.eval.judging import judge_file


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from mfcli.data.prepare import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("emt-data")
    prepare("digits", root / "digits", PrepareOptions(limit=60))
    prepare("shapes", root / "shapes", PrepareOptions(limit=40))
    return root


def rows(path):
    return [json.loads(line) for line in open(path)]


def strip_timing(rs):
    return [{k: v for k, v in r.items() if k not in ("batch_seconds", "batch", "batch_size")} for r in rs]


@pytest.fixture(scope="module")
def reference(pico, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "preds.jsonl"
    run_emt("tiny", [str(data / "digits"), str(data / "shapes" / "eval.jsonl")], out,
            EmtOptions(batch_size=4, max_new_tokens=8), progress=False)
    return out


def test_records_and_sidecar(reference, data):
    rs = rows(reference)
    assert len(rs) == 20 and len({r["id"] for r in rs}) == 20
    assert {r["task"] for r in rs} == {"digits", "shapes"} and [r["index"] for r in rs] == list(range(20))
    r = rs[0]
    for key in ("schema", "id", "task", "label", "labels", "prompt", "output", "batch_seconds"):
        assert key in r
    meta = json.loads(reference.with_name("preds.jsonl.meta.json").read_text())
    assert meta["complete"] and meta["settings"]["generation"] == {"do_sample": False, "max_new_tokens": 8,
                                                                   "batch_size": 4}
    assert all(len(d["sha256"]) == 64 for d in meta["settings"]["data"])


def test_batch_size_does_not_change_greedy_outputs(reference, data, tmp_path):
    out = tmp_path / "b1.jsonl"
    run_emt("tiny", [str(data / "digits"), str(data / "shapes")], out, EmtOptions(batch_size=1, max_new_tokens=8),
            progress=False)
    assert [r["output"] for r in rows(out)] == [r["output"] for r in rows(reference)]


def test_resume_after_kill_equals_uninterrupted(reference, data, tmp_path):
    out = tmp_path / "p.jsonl"
    shutil.copy(reference, out)
    shutil.copy(reference.with_name("preds.jsonl.meta.json"), tmp_path / "p.jsonl.meta.json")
    lines = reference.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:10]) + lines[10][:25])  # killed mid-batch, mid-line
    meta = json.loads((tmp_path / "p.jsonl.meta.json").read_text())
    meta["complete"] = False
    (tmp_path / "p.jsonl.meta.json").write_text(json.dumps(meta))
    r = run_cli("emt", "tiny", data / "digits", data / "shapes" / "eval.jsonl", "--out", out, "--batch-size", "4",
                "--max-new-tokens", "8")
    assert r.returncode == 0, r.stderr
    assert strip_timing(rows(out)) == strip_timing(rows(reference))
    # the first two complete batches were kept, not recomputed
    assert [r["batch_seconds"] for r in rows(out)][:8] == [r["batch_seconds"] for r in rows(reference)][:8]


def test_settings_mismatch_refused_unless_overwrite(reference, data, tmp_path):
    out = tmp_path / "p.jsonl"
    shutil.copy(reference, out)
    shutil.copy(reference.with_name("preds.jsonl.meta.json"), tmp_path / "p.jsonl.meta.json")
    args = ["emt", "tiny", data / "digits", data / "shapes" / "eval.jsonl", "--out", out, "--batch-size", "4",
            "--max-new-tokens", "5"]
    r = run_cli(*args)
    # the refusal names the setting that differs, and its two values
    assert r.returncode == 1 and "--overwrite" in r.stderr, r.stderr
    assert "another generation.max_new_tokens (8 there, 5 now)" in r.stderr, r.stderr
    r = run_cli(*args, "--overwrite")
    assert r.returncode == 0, r.stderr


def test_shards_and_merge_equal_full_run(reference, data, tmp_path):
    for i in range(2):
        r = run_cli("emt", "tiny", data / "digits", data / "shapes" / "eval.jsonl", "--out", tmp_path / f"s{i}.jsonl",
                    "--batch-size", "4", "--max-new-tokens", "8", "--shard", f"{i}/2")
        assert r.returncode == 0, r.stderr
    r = run_cli("merge-preds", tmp_path / "s0.jsonl", tmp_path / "s1.jsonl", "--out", tmp_path / "m.jsonl")
    assert r.returncode == 0, r.stderr
    assert [(x["id"], x["output"]) for x in rows(tmp_path / "m.jsonl")] == \
        [(x["id"], x["output"]) for x in rows(reference)]
    r = run_cli("merge-preds", tmp_path / "s0.jsonl", "--out", tmp_path / "m2.jsonl")
    assert r.returncode == 1 and "cover" in r.stderr


def test_data_parallel_two_cpu_processes(reference, data, tmp_path):
    out = tmp_path / "dp.jsonl"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mfcli",
           "emt", "tiny", str(data / "digits"), str(data / "shapes" / "eval.jsonl"), "--out", str(out),
           "--batch-size", "4", "--max-new-tokens", "8", "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert [(x["id"], x["output"]) for x in rows(out)] == [(x["id"], x["output"]) for x in rows(reference)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dp.jsonl", "dp.jsonl.meta.json"]  # parts cleaned up


def test_missing_image_is_an_error_record(pico, data, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(data / "shapes", d)
    first = rows(d / "eval.jsonl")[0]
    (d / first["image"]).unlink()
    (d / rows(d / "eval.jsonl")[1]["image"]).write_bytes(b"garbage")
    out = tmp_path / "p.jsonl"
    run_emt("tiny", [str(d)], out, EmtOptions(batch_size=4, max_new_tokens=6), progress=False)
    rs = rows(out)
    assert len(rs) == 8 and rs[0]["error"] and rs[1]["error"] and rs[0]["output"] is None
    assert all("error" not in r for r in rs[2:])
    summary = judge_file(str(out), str(tmp_path / "j.jsonl"), make_judge("exact"))
    assert summary.tasks["shapes"]["verdicts"]["error"] == 2 and summary.tasks["shapes"]["n"] == 8


def test_clip_baseline_and_inline_judge(pico, data, tmp_path):
    r = run_cli("emt", "tiny-clip", data / "digits", "--out", tmp_path / "c.jsonl", "--judge", "exact")
    assert r.returncode == 0, r.stderr
    rs = rows(tmp_path / "c.jsonl")
    assert all(x["output"] in x["labels"] for x in rs)  # zero-shot: the answer is a label
    summary = json.loads((tmp_path / "c.summary.json").read_text())
    assert summary["tasks"]["digits"]["n"] == 12 and (tmp_path / "c.judged.jsonl").is_file()
    assert "accuracy" not in r.stdout and "digits" in r.stderr


def test_model_without_image_token(pico, data, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(pico["tiny"], d)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg.pop("extra_special_tokens", None)
    cfg.pop("image_token", None)
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    pc = json.loads((d / "processor_config.json").read_text())
    pc["image_token"] = "<nope>"
    (d / "processor_config.json").write_text(json.dumps(pc))
    with pytest.raises(MfcliError, match="no image token"):
        run_emt(str(d), [str(data / "digits")], tmp_path / "p.jsonl", EmtOptions(), progress=False)


def test_lora_adapter_dir_on_its_base(pico, data, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(pico["tiny"])
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=r".*language_model.*\.(q_proj|v_proj)"))
    peft_model.save_pretrained(tmp_path / "adapter")
    cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(pico["tiny"])
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps(cfg))
    out = tmp_path / "p.jsonl"
    run_emt(str(tmp_path / "adapter"), [str(data / "digits")], out, EmtOptions(max_new_tokens=6), progress=False)
    assert len(rows(out)) == 12
