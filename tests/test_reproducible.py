"""Issue 37: built-in models that do not depend on the machine, and a fingerprint wherever their numbers go."""

import json
import os
import subprocess
import sys
from dataclasses import asdict

import pytest

from conftest import PICO
from mfcli.io.checkpoint import Manifest

FIRST_STAGES = {**PICO, "instruct_steps": 10, "max_eval": 8}  # tiny's first stages, shortened: the same code path


def _build(tmp_path, name, parent_env, pinned=True):
    """Build the shortened recipe in a child process whose parent environment is `parent_env`."""
    from mfcli.zoo.build import build_pinned

    out = {"tiny": tmp_path / name / "tiny", "tiny-clip": tmp_path / name / "clip"}
    saved = {k: os.environ.get(k) for k in parent_env}
    os.environ.update(parent_env)
    try:
        if pinned:
            build_pinned("tiny", out, FIRST_STAGES, progress=False)
        else:  # the same child, without the pins: what the machine's own settings give
            spec = {"model": "tiny", "out": {k: str(v) for k, v in out.items()}, "recipe": FIRST_STAGES,
                    "progress": False}
            env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR",)}
            subprocess.run([sys.executable, "-m", "mfcli.zoo.build", json.dumps(spec)], env=env, check=True,
                           capture_output=True)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return {n: json.loads((d / "mfcli.json").read_text())["fingerprint"]["built_in"] for n, d in out.items()}


@pytest.mark.slow
@pytest.mark.skipif(os.uname().machine not in ("x86_64", "AMD64"), reason="the kernel-level pins are x86's")
def test_the_build_is_the_same_under_two_kernel_levels_and_two_thread_counts(tmp_path):
    import torch

    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("this CPU cannot run the pinned AVX2 kernels")
    a = _build(tmp_path, "a", {"ATEN_CPU_CAPABILITY": "avx512", "OMP_NUM_THREADS": "1"})
    b = _build(tmp_path, "b", {"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "4"})
    for name in ("tiny", "tiny-clip"):
        assert a[name]["weights_sha256"] == b[name]["weights_sha256"], name
        assert (a[name]["cpu_capability"], a[name]["mkl_cbwr"], a[name]["threads"], a[name]["pinned"]) == \
            ("AVX2", "AVX2", 2, True)
    # the control: without the pins the two kernel levels give other weights (what the pins are for)
    c = _build(tmp_path, "c", {"ATEN_CPU_CAPABILITY": "default"}, pinned=False)
    d = _build(tmp_path, "d", {"ATEN_CPU_CAPABILITY": "avx2"}, pinned=False)
    assert c["tiny"]["weights_sha256"] != d["tiny"]["weights_sha256"]
    assert not c["tiny"]["pinned"] and c["tiny"]["cpu_capability"] == "DEFAULT"


def test_a_cached_build_unlike_the_reference_is_said_once_naming_the_difference(monkeypatch):
    from mfcli.zoo import fingerprint

    want = {"recipe": {"version": 6}, "weights_sha256": "a" * 64, "cpu_capability": "AVX2", "mkl_cbwr": "AVX2",
            "threads": 2, "machine": "x86_64", "libraries": {"torch": "2.13.0", "pillow": "12.0.0"}}
    monkeypatch.setattr(fingerprint, "reference", lambda name: want)
    monkeypatch.setattr(fingerprint, "_SAID", set())
    said = []
    got = {**want, "weights_sha256": "b" * 64, "cpu_capability": "AVX512",
           "libraries": {"torch": "2.13.0", "pillow": "13.0.0"}}
    diff = fingerprint.check_against_reference("tiny", got, said.append)
    assert diff == ["weights_sha256 bbbbbbbbbbbb… vs aaaaaaaaaaaa…", "cpu_capability AVX512 vs AVX2",
                    "pillow 13.0.0 vs 12.0.0"]
    assert len(said) == 1 and "pillow 13.0.0 vs 12.0.0" in said[0] and "--rebuild" in said[0]
    fingerprint.check_against_reference("tiny", got, said.append)
    assert len(said) == 1  # once
    assert fingerprint.check_against_reference("tiny", {**got, "recipe": {"version": 6, "clip_steps": 30}},
                                               said.append) == []  # another recipe (the tests' pico): not compared
    assert fingerprint.check_against_reference("tiny-clip", want, said.append) == [] and len(said) == 1
    # a library the cached build did not record (made before the fingerprint named it) is not a difference;
    # one it recorded as not installed is
    from mfcli.provenance import differences
    newer = {**want, "libraries": {**want["libraries"], "gguf": "0.19.0"}}
    assert differences(want, newer) == []
    assert differences({**want, "libraries": {**want["libraries"], "gguf": None}}, newer) == ["gguf None vs 0.19.0"]


def test_a_cached_build_is_checked_against_the_libraries_it_names(tmp_path, monkeypatch):
    """A build names the libraries that can move its weights (smol: gguf too, which reads its GGUF); a
    cached build is compared on those, so a gguf upgrade is said for smol and never for tiny."""
    import mfcli.zoo as zoo
    from mfcli.provenance import library_versions

    monkeypatch.setattr(zoo, "_WARNED", set())
    now = library_versions(("torch", "numpy"))

    def cached(name, libraries):
        d = tmp_path / name
        d.mkdir()
        fp = {"built_in": {"model": name, "libraries": libraries}}
        (d / "mfcli.json").write_text(json.dumps(asdict(Manifest(f"zoo {name}", fingerprint=fp))))
        return d

    said = []
    zoo._check_libraries("tiny", cached("tiny", now), said.append)
    assert said == []  # no gguf in tiny's list: whatever gguf is installed, tiny is not told
    zoo._check_libraries("smol", cached("smol", {**now, "gguf": "0.0.1"}), said.append)
    assert len(said) == 1 and f"gguf 0.0.1 vs {library_versions(('gguf',))['gguf']}" in said[0] and "--rebuild" in said[0]
    assert "torch" not in said[0]


def _model(tmp_path, name, digest, model="tiny", kernel="AVX2"):
    d = tmp_path / name
    d.mkdir()
    fp = {"built_in": {"model": model, "recipe_version": 6, "weights_sha256": digest, "cpu_capability": kernel,
                       "mkl_cbwr": "AVX2", "threads": 2, "pinned": True, "machine": "x86_64",
                       "libraries": {"torch": "2.13.0", "transformers": "5.25.0", "pillow": "12.0.0"}}}
    (d / "mfcli.json").write_text(json.dumps(asdict(Manifest("finetune", options={"method": "full"}, fingerprint=fp))))
    return d


def _judged(tmp_path, model_dir, right):
    rows = [{"schema": "mfcli.judged/2", "id": f"r{i}", "image": f"{i}.png", "task": "cls", "metric": "accuracy",
             "verdict": "correct" if ok else "wrong", "model": model_dir.name} for i, ok in enumerate(right)]
    p = tmp_path / f"{model_dir.name}.judged.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / f"{model_dir.name}.jsonl.meta.json").write_text(json.dumps(
        {"settings": {"model": model_dir.name, "model_path": str(model_dir), "data": []}}))
    return str(p)


def test_a_report_whose_runs_descend_from_two_builds_says_so(tmp_path):
    from mfcli.report.build import build
    from mfcli.report.render import as_json, html_page, markdown
    from mfcli.report.table import collect

    a, b = _model(tmp_path, "run-a", "1" * 64), _model(tmp_path, "run-b", "2" * 64)
    c = _model(tmp_path, "run-c", "1" * 64)
    inputs = [_judged(tmp_path, a, [True] * 20), _judged(tmp_path, b, [False] * 20), _judged(tmp_path, c, [True] * 20)]
    rep = build(collect(inputs, targets=["cls"]))
    assert len(rep.builds) == 2
    md = markdown(rep)
    assert "2 different builds" in md and "not comparable number for number" in md and "weights_sha256" in md
    assert "2 different builds" in html_page(rep, [])
    assert {tuple(x["models"]) for x in as_json(rep)["builds"]} == {("run-a", "run-c"), ("run-b",)}
    one = build(collect(inputs[:1] + inputs[2:], targets=["cls"]))
    text = markdown(one)
    assert "Built-in model: recipe 6, weights sha256 tiny 111111111111…" in text and "different builds" not in text
    # tiny and tiny-clip of one build are one build; a tiny-clip built under another kernel level is not
    clip = _model(tmp_path, "clip-same", "3" * 64, model="tiny-clip")
    same = build(collect(inputs[:1] + [_judged(tmp_path, clip, [True] * 20)], targets=["cls"]))
    assert len(same.builds) == 1 and "tiny-clip 333333333333…" in markdown(same)
    other = _model(tmp_path, "clip-other", "3" * 64, model="tiny-clip", kernel="AVX512")
    assert len(build(collect(inputs[:1] + [_judged(tmp_path, other, [True] * 20)], targets=["cls"])).builds) == 2


@pytest.mark.skipif(os.uname().machine not in ("x86_64", "AMD64"), reason="the kernel-level pins are x86's")
def test_mfcli_pinned_runs_a_command_under_the_builds_pins():
    """MFCLI_PINNED=1: the command replaces itself with a pinned copy of itself before torch computes
    anything (the script prints the kernel level only once it runs pinned)."""
    script = ("import os, sys\n"
              "if os.environ.get('MKL_CBWR'):\n"
              "    import torch; print('pinned', torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(),"
              " flush=True)\n"
              "sys.argv = ['mfcli', '--version']\n"
              "from mfcli.cli import main\n"
              "main()\n")
    env = {**os.environ, "MFCLI_PINNED": "1", "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1"}
    env.pop("MKL_CBWR", None)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("pinned AVX2 2") == 1, r.stdout
