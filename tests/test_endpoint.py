"""`mfcli emt MODEL DATA --endpoint URL`: the same question and records as the local path, asked of an
OpenAI-compatible server. Against the fake server (tests/fake_openai.py) for what a real one cannot be made
to do on demand (429s, 500s, a refused key, dropped connections, a kill mid-run); against a real
`transformers serve` for agreement with the local path (test_served_tiny_agrees_with_the_local_path)."""

import base64
import io
import json
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import run_cli
from fake_openai import FakeOpenAI
from serving import TransformersServe, agreement

KEY = "sk-test-SECRET-0123456789"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two kinds: classification (digits) and VQA (scene-vqa), 12 + 12 held-out records."""
    from mfcli.data.prepare import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("endpoint-data")
    prepare("digits", root / "digits", PrepareOptions(limit=60))
    prepare("scene-vqa", root / "vqa", PrepareOptions(limit=60))
    return root


def rows(path):
    return [json.loads(line) for line in open(path)]


def content(rs):
    """A prediction file less its timing fields (what a resumed or sharded run may change)."""
    return [{k: v for k, v in r.items() if k != "batch_seconds"} for r in rs]


def emt(server, data, out, *extra, env=None, process=False):
    return run_cli("emt", "fake-vlm", data / "digits", data / "vqa", "--endpoint", server.url, "--out", out,
                   "--request-retries", "0", *extra, env=env, process=process)


def chat_requests(server):
    return [r for r in server.requests if isinstance(r["messages"][0]["content"], list)]


def test_the_request_is_the_local_paths_question(data, tmp_path):
    """Each record's prompt as the local path puts it in the user turn (image first, `<image>` dropped),
    the image as a lossless PNG of the pixels the local path reads, greedy, the kind's cap, a seed; the
    rows are the local path's records in record order, answers stripped as the local path strips them."""
    from PIL import Image

    from mfcli.io.images import load_rgb
    from mfcli.io.records import read_eval
    from mfcli.models.chat import prompt_text

    out = tmp_path / "p.jsonl"
    with FakeOpenAI() as server:
        r = emt(server, data, out)
        assert r.returncode == 0, r.stderr
        sent = chat_requests(server)
    records = read_eval(data / "digits" / "eval.jsonl") + read_eval(data / "vqa" / "eval.jsonl")
    # every record asked once: the probe (sent first, before any file is touched) is the first record's
    assert len(sent) == len(records)
    by_text = {}
    for req in sent:
        assert req["model"] == "fake-vlm" and req["temperature"] == 0 and req["seed"] == 0
        parts = req["messages"][0]["content"]
        assert [p["type"] for p in parts] == ["image_url", "text"]
        by_text.setdefault(parts[1]["text"], []).append(req)
    for rec in records:
        asked = by_text[prompt_text(rec.prompt)]
        assert {q["max_tokens"] for q in asked} == {32 if rec.kind == "classification" else 16}
    # the image: a PNG data URL whose pixels are exactly what the local path reads
    first = sent[0]["messages"][0]["content"][0]["image_url"]["url"]
    assert first.startswith("data:image/png;base64,")
    sent_img = Image.open(io.BytesIO(base64.b64decode(first.split(",", 1)[1])))
    assert sent_img.format == "PNG"
    assert sent_img.convert("RGB").tobytes() == load_rgb(data / "digits" / records[0].image).tobytes()
    got = rows(out)
    assert [g["id"] for g in got] == [rec.id for rec in records] and [g["index"] for g in got] == list(range(24))
    assert all(g["output"].startswith("word-") and not g.get("error") for g in got)  # " word-…" stripped
    assert {g["kind"] for g in got} == {"classification", "vqa"} and all("references" in g for g in got[12:])
    meta = json.loads((tmp_path / "p.jsonl.meta.json").read_text())
    assert meta["complete"] and meta["settings"]["served_model"] == "fake-vlm"
    assert meta["endpoint"]["url"] == server.url and meta["settings"]["generation"]["temperature"] == 0
    assert "requests/s" in r.stderr and str(out) in r.stdout


def test_inline_judge_and_report_read_endpoint_predictions(data, tmp_path):
    out = tmp_path / "p.jsonl"
    with FakeOpenAI() as server:
        server.vision_answer = lambda parts: " The number is 3." if "number" in parts[1]["text"] else " red"
        r = emt(server, data, out, "--judge", "exact")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "p.summary.json").read_text())
    labels = [x["label"] for x in rows(out)[:12]]
    assert summary["tasks"]["digits"]["score"] == pytest.approx(labels.count("3") / 12)
    r = run_cli("report", tmp_path / "p.judged.jsonl", "--out", tmp_path / "report.md")
    assert r.returncode == 0, r.stderr


def test_retries_429_and_500_and_a_dropped_connection(data, tmp_path):
    out = tmp_path / "p.jsonl"
    with FakeOpenAI() as server:
        server.plan = ["ok", "429", "500", "drop"]  # the probe, then three failures the client retries
        r = run_cli("emt", "fake-vlm", data / "digits", data / "vqa", "--endpoint", server.url, "--out", out,
                    "--in-flight", "1")
        assert r.returncode == 0, r.stderr
        assert len(chat_requests(server)) == 24 + 3
    assert all(x["output"] and "error" not in x for x in rows(out))


def test_failed_requests_are_written_as_failures_and_asked_again(data, tmp_path):
    """A record the server never answers is a failure with its reason (not an empty answer a judge would
    score), the command exits 1 with the count, and the same command asks only those again; the result
    equals an uninterrupted run's."""
    with FakeOpenAI() as server:
        r = emt(server, data, tmp_path / "whole.jsonl")
        assert r.returncode == 0, r.stderr
    out = tmp_path / "p.jsonl"
    with FakeOpenAI() as server:
        server.fail_after = 10  # the probe (record 0) and records 1-9, then 500s
        r = emt(server, data, out, "--in-flight", "1")
    assert r.returncode == 1
    line = r.stderr.strip().splitlines()[-1]
    assert "14 of 24 records got no answer" in line and "Re-run the same command" in line, r.stderr
    got = rows(out)
    failed = [x for x in got if x.get("request_failed")]
    assert len(got) == 24 and len(failed) == 14
    assert all(x["output"] is None and "HTTP 500" in x["error"] for x in failed)
    assert not json.loads((tmp_path / "p.jsonl.meta.json").read_text())["complete"]
    with FakeOpenAI() as server:
        r = emt(server, data, out)
        assert r.returncode == 0, r.stderr
        assert len(chat_requests(server)) == 1 + 14  # the probe, then only the failed records
    assert content(rows(out)) == content(rows(tmp_path / "whole.jsonl"))
    assert json.loads((tmp_path / "p.jsonl.meta.json").read_text())["complete"]


def test_a_server_that_goes_away_stops_the_run_without_losing_answers(data, tmp_path, monkeypatch):
    import mfcli.eval.endpoint as endpoint

    monkeypatch.setattr(endpoint, "STOP_AFTER_FAILURES_IN_A_ROW", 3)
    out = tmp_path / "p.jsonl"
    with FakeOpenAI() as server:
        server.fail_after = 6
        r = emt(server, data, out, "--in-flight", "1")
        asked = len(chat_requests(server))
    assert r.returncode == 1 and "18 of 24 records got no answer" in r.stderr, r.stderr
    assert asked == 6 + 3  # it stopped asking after 3 failures in a row
    got = rows(out)
    assert [x["output"] is not None for x in got] == [True] * 6 + [False] * 3
    with FakeOpenAI() as server:
        assert emt(server, data, out).returncode == 0
    assert len(rows(out)) == 24 and all(x["output"] for x in rows(out))


def test_kill_mid_run_then_rerun_equals_uninterrupted(data, tmp_path):
    with FakeOpenAI() as server:
        assert emt(server, data, tmp_path / "whole.jsonl").returncode == 0
    out = tmp_path / "p.jsonl"
    with FakeOpenAI() as server:
        server.delay = 0.1
        cmd = [sys.executable, "-m", "mfcli", "emt", "fake-vlm", str(data / "digits"), str(data / "vqa"),
               "--endpoint", server.url, "--out", str(out), "--in-flight", "2"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 6):
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kept = len(out.read_text().splitlines())
        assert 6 <= kept < 24
        server.requests.clear()
        server.delay = 0.0
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert len(chat_requests(server)) <= 1 + 24 - kept + 2  # the probe, the rest, what was in flight
    got = rows(out)
    assert len({x["id"] for x in got}) == len(got) == 24
    assert content(got) == content(rows(tmp_path / "whole.jsonl"))


def test_shards_against_an_endpoint_merge_to_the_whole_run(data, tmp_path):
    with FakeOpenAI() as server:
        assert emt(server, data, tmp_path / "whole.jsonl").returncode == 0
        for i in range(2):
            r = emt(server, data, tmp_path / f"s{i}.jsonl", "--shard", f"{i}/2")
            assert r.returncode == 0, r.stderr
    r = run_cli("merge-preds", tmp_path / "s0.jsonl", tmp_path / "s1.jsonl", "--out", tmp_path / "m.jsonl")
    assert r.returncode == 0, r.stderr
    assert [(x["id"], x["output"]) for x in rows(tmp_path / "m.jsonl")] == \
        [(x["id"], x["output"]) for x in rows(tmp_path / "whole.jsonl")]


def test_the_key_comes_from_the_environment_and_is_never_written(data, tmp_path):
    out = tmp_path / "p.jsonl"
    with FakeOpenAI() as server:
        r = emt(server, data, out, "--endpoint-key-env", "MY_VLM_KEY", env={"MY_VLM_KEY": KEY})
        assert r.returncode == 0, r.stderr
        assert {h["authorization"] for h in server.headers} == {f"Bearer {KEY}"}
        # a refused key: one line that names the variable, never the key (the server quotes it back)
        server.plan = ["401"]
        r = emt(server, data, tmp_path / "q.jsonl", "--endpoint-key-env", "MY_VLM_KEY", env={"MY_VLM_KEY": KEY})
    assert r.returncode == 1 and "HTTP 401" in r.stderr and "MY_VLM_KEY" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "q.jsonl").exists() and not (tmp_path / "q.jsonl.meta.json").exists()
    for f in tmp_path.iterdir():
        assert KEY not in f.read_text(), f
    assert KEY not in r.stderr + r.stdout


def test_bad_endpoints_fail_in_one_line_before_anything_is_written(data, tmp_path):
    out = tmp_path / "p.jsonl"
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = run_cli("emt", "fake-vlm", data / "digits", "--endpoint", f"http://127.0.0.1:{port}/v1", "--out", out,
                "--request-retries", "0")
    assert r.returncode == 1 and "could not reach" in r.stderr and "--endpoint" in r.stderr, r.stderr
    with FakeOpenAI() as server:
        server.models = ["llava-hf/llava-1.5-7b-hf", "other"]
        r = emt(server, data, out)
        assert r.returncode == 1 and "does not serve 'fake-vlm'" in r.stderr, r.stderr
        assert "llava-hf/llava-1.5-7b-hf, other" in r.stderr
        server.models = ["fake-vlm"]
        server.plan = ["400"]  # a text-only model refuses the image
        r = emt(server, data, out)
        assert r.returncode == 1 and "HTTP 400" in r.stderr and "not a multimodal model" in r.stderr, r.stderr
        assert "vision-capable" in r.stderr
    for r_ in (r,):
        assert len(r_.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    r = run_cli("emt", "fake-vlm", data / "digits", "--endpoint", "localhost:8000", "--out", out)
    assert r.returncode == 2 and "http(s) URL" in r.stderr


def test_a_server_without_a_model_list_is_asked_anyway(data, tmp_path):
    with FakeOpenAI() as server:
        server.models = None  # GET /v1/models is a 404
        r = emt(server, data, tmp_path / "p.jsonl")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "p.jsonl.meta.json").read_text())["settings"]["served_model"] is None


def test_what_an_endpoint_cannot_do_is_said_in_one_line(pico, data, tmp_path):
    with FakeOpenAI() as server:
        r = run_cli("emt", "tiny-clip", data / "digits", "--endpoint", server.url, "--out", tmp_path / "c.jsonl")
        assert r.returncode == 1 and "CLIP baseline" in r.stderr and "without --endpoint" in r.stderr, r.stderr
        r = run_cli("emt", "fake-vlm", data / "digits", "--endpoint", server.url, "--out", tmp_path / "b.jsonl",
                    "--batch-size", "4")
        assert r.returncode == 2 and "--batch-size" in r.stderr and "--in-flight" in r.stderr, r.stderr
        r = run_cli("rank", server.url, "--data", data / "digits", "--out", tmp_path / "rank.jsonl")
        assert r.returncode == 1 and "server address" in r.stderr and "weights" in r.stderr, r.stderr
        r = run_cli("emt", server.url, data / "digits", "--out", tmp_path / "u.jsonl")  # the URL as MODEL
        assert r.returncode == 1 and "--endpoint URL" in r.stderr, r.stderr
        assert not server.requests


def test_help_says_which_options_belong_to_the_endpoint_and_which_to_the_judge():
    r = run_cli("emt", "--help")
    text = " ".join(r.stdout.split())
    for flag in ("--endpoint", "--endpoint-key-env", "--in-flight", "--request-timeout", "--request-retries",
                 "--image-format"):
        assert f"{flag} <" in text and text.split(f"{flag} <", 1)[1].split("> ", 1)[1].startswith("[endpoint]")
    for flag in ("--judge", "--model", "--base-url", "--concurrency"):
        assert text.split(f"{flag} <", 1)[1].split("> ", 1)[1].startswith("[judge]"), flag


# --- a real server: `transformers serve` on the built-in model (tests/serving.py) ---

def test_served_model_agrees_with_the_local_path(pico, tmp_path):
    """The pico model (the suite's stand-in for tiny) served by `transformers serve`, asked through
    --endpoint, against the same model loaded here, on three kinds — `text` (the built-in facts) asked
    without an image on both paths. Both decode greedily with the same chat template and pixels; the local
    path batches with left padding, the server asks one at a time, which can move a float's last bit — so
    agreement is asked of 99 % of records, not all (on this machine: all)."""
    from mfcli.data.prepare import PrepareOptions, prepare

    data = tmp_path / "data"
    prepare("digits", data / "digits", PrepareOptions(limit=1000))  # 200 held-out records
    prepare("scene-vqa", data / "vqa", PrepareOptions(limit=500))  # 100
    prepare("facts", data / "facts", PrepareOptions())  # 51
    tasks = [data / "digits", data / "vqa", data / "facts"]
    local, served = tmp_path / "local.jsonl", tmp_path / "served.jsonl"
    r = run_cli("emt", "tiny", *tasks, "--out", local, "--judge", "exact")
    assert r.returncode == 0, r.stderr
    with TransformersServe(pico["tiny"], tmp_path / "serve.log") as server:
        r = run_cli("emt", str(pico["tiny"]), *tasks, "--endpoint", server.url,
                    "--out", served, "--judge", "exact", "--in-flight", "4")
    assert r.returncode == 0, r.stderr
    a, b = rows(local), rows(served)
    assert len(a) == len(b) == 351 and {x["kind"] for x in a} == {"classification", "vqa", "text"}
    assert [x["id"] for x in a] == [x["id"] for x in b]
    assert agreement(a, b) >= 0.99, [(x["output"], y["output"]) for x, y in zip(a, b) if x["output"] != y["output"]]
    sa = json.loads((tmp_path / "local.summary.json").read_text())["tasks"]
    sb = json.loads((tmp_path / "served.summary.json").read_text())["tasks"]
    for task in sa:
        assert abs(sa[task]["score"] - sb[task]["score"]) <= 0.01, (task, sa[task], sb[task])


def test_a_text_record_is_asked_without_an_image(tmp_path):
    """The `text` kind (the built-in facts) over --endpoint: the user turn holds only the prompt — no
    image_url part — as the local path asks it."""
    from mfcli.data.prepare import PrepareOptions, prepare
    from mfcli.models.chat import prompt_text

    prepare("facts", tmp_path / "facts", PrepareOptions())
    with FakeOpenAI() as server:
        r = run_cli("emt", "fake-vlm", tmp_path / "facts", "--endpoint", server.url, "--out", tmp_path / "f.jsonl",
                    "--request-retries", "0")
        assert r.returncode == 0, r.stderr
        sent = chat_requests(server)
    records = [json.loads(x) for x in (tmp_path / "facts" / "eval.jsonl").read_text().splitlines()]
    assert len(sent) == len(records)
    assert all([p["type"] for p in q["messages"][0]["content"]] == ["text"] for q in sent)
    assert {q["messages"][0]["content"][0]["text"] for q in sent} == {prompt_text(x["prompt"]) for x in records}
    assert all(q["max_tokens"] == 16 for q in sent)
