"""VQA, captioning and multiple choice through the whole chain: prepare reads the public data sets'
layouts, emt answers, judge scores each kind on its metric (checked against the metric library and an
independent CIDEr-D), report carries the metric per task."""

import json
import math
from collections import Counter

import pytest
from PIL import Image

from conftest import run_cli
from mfcli.data.prepare import PrepareOptions, prepare
from mfcli.errors import MfcliError
from mfcli.eval.judges import make_judge
from mfcli.eval.judging import judge_file
from mfcli.io.records import read_eval, read_train


def _images(root, n):
    (root / "img").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (8, 8), (30 * i % 255, 0, 0)).save(root / "img" / f"{i}.png")


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


VQA_ANSWERS = ["two"] * 3 + ["2"] * 4 + ["3"] * 3  # VQAv2's ten annotators, as {"answer": …} dicts


def test_prepare_vqa_rows_in_vqav2_shape(tmp_path):
    _images(tmp_path, 10)
    rows = [{"image": f"img/{i}.png", "question": f"How many dogs are there? ({i})", "question_id": i,
             "answers": [{"answer": a, "answer_confidence": "yes"} for a in VQA_ANSWERS]} for i in range(10)]
    src = _jsonl(tmp_path / "vqa.jsonl", rows)
    info = prepare(str(src), tmp_path / "out", PrepareOptions(eval_fraction=0.3))
    assert info.kind == "vqa"
    ev = read_eval(tmp_path / "out" / "eval.jsonl")
    assert len(ev) == 3 and all(r.kind == "vqa" and r.references == tuple(VQA_ANSWERS) for r in ev)
    # LLaVA-1.5's short-answer prompt: the question, then its formatting instruction
    assert ev[0].prompt.endswith("\nAnswer the question using a single word or phrase.")
    assert ev[0].prompt.startswith("How many dogs are there?")
    train = read_train(tmp_path / "out" / "train.jsonl")
    assert len(train) == 7
    assert {t.answer for t in train} == {"2"}  # the most frequent reference, not the first
    assert train[0].question.startswith("<image>\n")


def test_prepare_captions_choice_csv_and_llava_json(tmp_path):
    _images(tmp_path, 10)
    caps = [{"image": f"img/{i}.png", "sentences": [{"raw": f"A dog number {i}."}, {"raw": "A dog."}]}
            for i in range(10)]
    prepare(str(_jsonl(tmp_path / "caps.jsonl", caps)), tmp_path / "caps", PrepareOptions())
    ev = read_eval(tmp_path / "caps" / "eval.jsonl")
    assert {r.kind for r in ev} == {"caption"} and all(r.references[1] == "A dog." for r in ev)
    assert ev[0].prompt == "Provide a one-sentence caption for the provided image."  # LLaVA-1.5 / lmms-eval
    # one training record per caption, two captions per training image
    val = read_eval(tmp_path / "caps" / "val.jsonl") if (tmp_path / "caps" / "val.jsonl").is_file() else []
    assert len(read_train(tmp_path / "caps" / "train.jsonl")) == 2 * (10 - len(ev) - len(val))

    choice = [{"image": f"img/{i}.png", "question": "Which animal?", "choices": ["cat", "dog", "bird"],
               "answer": i % 3} for i in range(10)]  # ScienceQA: a 0-based index
    prepare(str(_jsonl(tmp_path / "sqa.jsonl", choice)), tmp_path / "sqa", PrepareOptions())
    ev = read_eval(tmp_path / "sqa" / "eval.jsonl")
    assert all(r.kind == "choice" and r.labels == ("cat", "dog", "bird") for r in ev)
    assert ev[0].prompt == ("Which animal?\nA. cat\nB. dog\nC. bird\n"
                            "Answer with the option's letter from the given choices directly.")
    train = read_train(tmp_path / "sqa" / "train.jsonl")
    assert {t.answer for t in train} <= {"A", "B", "C"}

    # MMBench's TSV layout: options in columns A-D (D empty for a three-option question), answer a letter
    (tmp_path / "mmb.csv").write_text("image,question,A,B,C,D,answer\n" +
                                      "".join(f"img/{i}.png,Which animal?,cat,dog,bird,,C\n" for i in range(10)))
    prepare(str(tmp_path / "mmb.csv"), tmp_path / "mmb", PrepareOptions())
    ev = read_eval(tmp_path / "mmb" / "eval.jsonl")
    assert ev[0].kind == "choice" and ev[0].labels == ("cat", "dog", "bird") and ev[0].references == ("C",)

    (tmp_path / "t.csv").write_text("image,question,answers\n" +
                                    "".join(f"img/{i}.png,What colour?,red|red|blue\n" for i in range(10)))
    prepare(str(tmp_path / "t.csv"), tmp_path / "csv", PrepareOptions())
    assert read_eval(tmp_path / "csv" / "eval.jsonl")[0].references == ("red", "red", "blue")

    llava = [{"id": f"q{i}", "image": f"img/{i}.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat is it?\nAnswer the question using a single word or phrase."},
        {"from": "gpt", "value": "dog"}, {"from": "human", "value": "Colour?"}, {"from": "gpt", "value": "red"}]}
        for i in range(10)]
    (tmp_path / "llava.json").write_text(json.dumps(llava))
    info = prepare(str(tmp_path / "llava.json"), tmp_path / "llava", PrepareOptions())
    recs = read_eval(tmp_path / "llava" / "eval.jsonl") + []
    assert info.kind == "vqa" and sum(info.counts["train"].values()) + sum(info.counts["eval"].values()) == 20
    # the suffix is not doubled: LLaVA's own question already carried it
    assert all(r.prompt.count("single word") == 1 for r in recs)


@pytest.mark.parametrize("rows, message", [
    ([{"image": "img/0.png", "question": "Q?", "answers": []}], "vqa.jsonl:1: a vqa row needs"),
    ([{"image": "img/0.png", "question": "Q?", "answers": [{"text": "x"}]}], "vqa.jsonl:1: reference answers must"),
    ([{"image": "img/0.png", "question": "Q?", "answers": ["a"]},
      {"image": "img/1.png", "captions": ["a dog"]}], "vqa.jsonl:2: a caption row in a table of vqa rows"),
    ([{"image": "img/0.png", "question": "Q?", "options": ["a", "b"], "answer": "C"}], "vqa.jsonl:1: answer 'C'"),
])
def test_bad_rows_name_file_and_line(tmp_path, rows, message):
    _images(tmp_path, 2)
    with pytest.raises(MfcliError) as e:
        prepare(str(_jsonl(tmp_path / "vqa.jsonl", rows)), tmp_path / "out", PrepareOptions())
    assert message in str(e.value)


@pytest.mark.parametrize("record, message", [
    ({"kind": "vqa"}, "needs 'references'"),
    ({"kind": "caption", "references": []}, "needs 'references'"),
    ({"kind": "vqa", "references": [["a"]]}, "must be a list of non-empty strings"),
    ({"kind": "choice", "references": ["D"], "labels": ["x", "y"]}, "must be one letter of AB"),
    ({"kind": "essay", "references": ["a"]}, "unknown kind 'essay'"),
])
def test_eval_records_with_bad_references(tmp_path, record, message):
    row = {"schema": "mfcli.eval/2", "id": "1", "task": "t", "image": "a.png", "prompt": "p", "label": "x",
           "labels": [], **record}
    path = _jsonl(tmp_path / "eval.jsonl", [row])
    with pytest.raises(MfcliError) as e:
        read_eval(path)
    assert f"{path}:1" in str(e.value) and message in str(e.value)


def _pred(i, kind, output, refs, task="t", **kw):
    return {"id": str(i), "task": task, "kind": kind, "output": output, "references": refs, "label": refs[0],
            "labels": kw.get("labels", []), "model": "m"}


def test_judge_scores_each_kind_on_its_metric(tmp_path):
    from mfcli.eval.metrics.vqa import vqa_accuracy

    rows = [_pred(0, "vqa", "Two.", VQA_ANSWERS, "v"), _pred(1, "vqa", "3", VQA_ANSWERS, "v"),
            _pred(2, "vqa", "", VQA_ANSWERS, "v"),
            _pred(3, "choice", "B", ["B"], "c", labels=["cat", "dog"]),
            _pred(4, "choice", "It is a cat.", ["B"], "c", labels=["cat", "dog"]),
            {"id": "5", "task": "k", "output": "The object is a cat.", "label": "cat", "labels": ["cat", "dog"]}]
    src = _jsonl(tmp_path / "p.jsonl", rows)
    s = judge_file(str(src), str(tmp_path / "j.jsonl"), make_judge("exact"))
    judged = [json.loads(x) for x in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert [r["score"] for r in judged[:3]] == [vqa_accuracy("Two.", VQA_ANSWERS), vqa_accuracy("3", VQA_ANSWERS), 0]
    assert judged[0]["score"] == 1.0 and judged[1]["score"] == pytest.approx(0.9) and judged[1]["verdict"] == "partial"
    assert [r["verdict"] for r in judged[3:]] == ["correct", "wrong_label", "correct"]
    assert s.tasks["v"]["metric"] == "vqa_accuracy" and s.tasks["v"]["score"] == pytest.approx(1.9 / 3)
    assert s.tasks["c"]["accuracy"] == 0.5 and s.tasks["k"]["accuracy"] == 1.0
    assert s.metric == "mixed" and "score" not in s.overall


def test_a_metric_judge_refuses_records_of_another_kind(tmp_path):
    src = _jsonl(tmp_path / "p.jsonl", [_pred(0, "vqa", "2", ["2"])])
    r = run_cli("judge", src, "--judge", "caption", "--out", tmp_path / "j.jsonl")
    assert r.returncode == 1 and "judge 'caption' scores caption records; this is a vqa record" in r.stderr
    assert f"{src}:1" in r.stderr and "Traceback" not in r.stderr
    # a foreign file: answers and references, no kind — the judge says how to score them
    foreign = _jsonl(tmp_path / "f.jsonl", [{"output": "yes", "references": ["yes", "no", "yes"]}])
    r = run_cli("judge", foreign, "--out", tmp_path / "j.jsonl")
    assert r.returncode == 1 and "--judge vqa, --judge caption, --judge choice or --judge text" in r.stderr
    r = run_cli("judge", foreign, "--judge", "vqa", "--out", tmp_path / "j.jsonl", "--json")
    assert r.returncode == 0, r.stderr
    # two of three annotators said "yes": the leave-one-out subsets give 1/3, 2/3, 1/3
    assert json.loads(r.stdout)["tasks"][""]["score"] == pytest.approx(4 / 9)


# --- CIDEr-D, checked two ways ---------------------------------------------------------------------------

def _ngrams(words, n):
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def cider_d_reference(cands: list[str], refs: list[list[str]], sigma=6.0) -> list[float]:
    """CIDEr-D from Vedantam et al. (2015) §3 and the coco-caption definition, written independently:
    tf-idf n-gram vectors (df over the references of the corpus), the hypothesis' counts clipped to the
    reference's, a Gaussian length penalty, mean over n = 1..4 and over references, ×10."""
    docs = [[w.split() for w in rs] for rs in refs]
    df = Counter()
    for rs in docs:
        for n in range(1, 5):
            df.update(set(g for r in rs for g in _ngrams(r, n)))
    log_n = math.log(len(refs))

    def vec(words, n):
        tf = _ngrams(words, n)
        return {g: c * (log_n - math.log(max(1.0, df[g]))) for g, c in tf.items()}

    out = []
    for cand, rs in zip(cands, docs):
        c = cand.split()
        total = 0.0
        for n in range(1, 5):
            vc = vec(c, n)
            sims = []
            for r in rs:
                vr = vec(r, n)
                num = sum(min(vc[g], vr[g]) * vr[g] for g in vc if g in vr)
                nc = math.sqrt(sum(v * v for v in vc.values()))
                nr = math.sqrt(sum(v * v for v in vr.values()))
                sim = num / (nc * nr) if nc and nr else 0.0
                sims.append(sim * math.exp(-((len(c) - len(r)) ** 2) / (2 * sigma ** 2)))
            total += sum(sims) / len(sims)
        out.append(10.0 * total / 4)
    return out


CAPTIONS = [("a red circle left of a blue square", ["a red circle left of a blue square",
                                                    "a blue square right of a red circle"]),
            ("a blue square", ["a green triangle above a blue square", "a blue square below a green triangle"]),
            ("A yellow circle, left of a red square.", ["a yellow circle left of a red square",
                                                        "a red square right of a yellow circle"]),
            ("two dogs play", ["a dog and another dog playing in grass", "two dogs are playing"]),
            ("", ["a cat"])]


def test_cider_equals_pycocoevalcap_and_an_independent_cider_d(tmp_path):
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.cider.cider import Cider

    from mfcli.eval.metrics.caption import caption_scores, tokenize

    assert tokenize("A yellow circle, left of a red square.") == "a yellow circle left of a red square"
    outs, refs = [c for c, _ in CAPTIONS], [r for _, r in CAPTIONS]
    got = caption_scores(outs, refs)
    lib, each = Cider().compute_score({i: [tokenize(x) for x in r] for i, r in enumerate(refs)},
                                      {i: [tokenize(o)] for i, o in enumerate(outs)})
    assert got["cider"] == pytest.approx(lib) and got["cider_each"] == pytest.approx(list(each))
    mine = cider_d_reference([tokenize(o) for o in outs], [[tokenize(x) for x in r] for r in refs])
    assert got["cider_each"] == pytest.approx(mine, rel=1e-9, abs=1e-12)
    assert got["cider"] == pytest.approx(sum(mine) / len(mine))
    assert got["cider_each"][0] > got["cider_each"][1] > got["cider_each"][4] == 0.0
    # corpus-level: the same caption scores differently in another corpus (document frequencies change)
    assert caption_scores(outs[:2], refs[:2])["cider_each"][0] != pytest.approx(got["cider_each"][0])
    # judged file and summary carry the same numbers
    rows = [_pred(i, "caption", o, r, "cap") for i, (o, r) in enumerate(CAPTIONS)]
    s = judge_file(str(_jsonl(tmp_path / "p.jsonl", rows)), str(tmp_path / "j.jsonl"), make_judge("exact"))
    assert s.tasks["cap"]["metric"] == "cider" and s.tasks["cap"]["score"] == pytest.approx(lib)
    assert s.tasks["cap"]["corpus"]["bleu4"] == pytest.approx(got["bleu4"])
    judged = [json.loads(x) for x in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert [r["score"] for r in judged] == pytest.approx(list(each))
    assert judged[4]["verdict"] == "empty"


def test_foreign_caption_file_with_its_own_field_names(tmp_path):
    pytest.importorskip("pycocoevalcap")
    from mfcli.eval.metrics.caption import caption_scores

    rows = [{"answer": o, "refs": r, "task": "flickr"} for o, r in CAPTIONS]
    src = _jsonl(tmp_path / "f.jsonl", rows)
    r = run_cli("judge", src, "--judge", "caption", "--output-field", "answer", "--references-field", "refs",
                "--out", tmp_path / "j.jsonl", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)["tasks"]["flickr"]
    want = caption_scores([o for o, _ in CAPTIONS], [r for _, r in CAPTIONS])
    assert got["score"] == pytest.approx(want["cider"]) and got["corpus"]["rouge_l"] == pytest.approx(want["rouge_l"])


def test_caption_chain_prepare_finetune_emt_judge_report(pico, tmp_path):
    """Model Tailor's setting in miniature: fine-tune on a caption target, score CIDEr beside the pre-trained
    tasks; the report's numbers are a direct pycocoevalcap call on the same outputs."""
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.cider.cider import Cider

    from mfcli.eval.metrics.caption import tokenize
    from mfcli.eval.metrics.vqa import vqa_accuracy

    data = tmp_path / "data"
    for task, limit in (("scene-caption", 60), ("scene-vqa", 30)):
        r = run_cli("prepare", task, "--out", data / task, "--limit", limit)
        assert r.returncode == 0, r.stderr
    r = run_cli("finetune", "tiny", data / "scene-caption", "--out", tmp_path / "ft", "--method", "full",
                "--epochs", "1", "--batch-size", "8")
    assert r.returncode == 0, r.stderr
    # Model Tailor calibrates on the caption training records as on any others
    r = run_cli("tailor", "tiny", tmp_path / "ft" / "epoch-1", "--sparsity", "0.1", "--nsamples", "16",
                "--out", tmp_path / "tailored")
    assert r.returncode == 0, r.stderr
    r = run_cli("emt", tmp_path / "ft" / "epoch-1", data / "scene-caption", data / "scene-vqa",
                "--out", tmp_path / "preds.jsonl", "--judge", "exact", "--batch-size", "8")
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "preds.jsonl.meta.json").read_text())
    assert meta["settings"]["generation"]["max_new_tokens"]["caption"] == 64
    judged = [json.loads(x) for x in (tmp_path / "preds.judged.jsonl").read_text().splitlines()]
    caps = [r for r in judged if r["task"] == "scene-caption"]
    vqas = [r for r in judged if r["task"] == "scene-vqa"]
    assert len(caps) == 12 and len(vqas) == 6 and {r["kind"] for r in caps} == {"caption"}
    want_cider, _ = Cider().compute_score({r["id"]: [tokenize(x) for x in r["references"]] for r in caps},
                                          {r["id"]: [tokenize(r["output"])] for r in caps})
    want_vqa = sum(vqa_accuracy(r["output"], r["references"]) for r in vqas) / len(vqas)
    summary = json.loads((tmp_path / "preds.summary.json").read_text())
    assert summary["tasks"]["scene-caption"]["score"] == pytest.approx(want_cider)
    r = run_cli("report", tmp_path / "preds.judged.jsonl", "--out", tmp_path / "report.json")
    assert r.returncode == 0, r.stderr
    rows = {x["task"]: x for x in json.loads((tmp_path / "report.json").read_text())["rows"]}
    assert rows["scene-caption"]["metric"] == "cider" and rows["scene-caption"]["score"] == pytest.approx(100 * want_cider)
    assert rows["scene-vqa"]["metric"] == "vqa_accuracy" and rows["scene-vqa"]["score"] == pytest.approx(100 * want_vqa)
    assert run_cli("report", tmp_path / "preds.judged.jsonl", "--out", tmp_path / "report.md").returncode == 0
    assert "cider" in (tmp_path / "report.md").read_text()


def test_clip_refuses_caption_records(pico, tmp_path):
    assert run_cli("prepare", "scene-caption", "--out", tmp_path / "d", "--limit", 10).returncode == 0
    r = run_cli("emt", "tiny-clip", tmp_path / "d", "--out", tmp_path / "p.jsonl")
    assert r.returncode == 1 and "a CLIP answers classification records only" in r.stderr


def test_hub_dataset_with_question_columns_reads_as_vqa(tmp_path, monkeypatch):
    """A Hugging Face dataset in VQAv2's column layout (the `datasets` API stood in for, offline)."""
    import sys
    import types

    fake = types.ModuleType("datasets")

    class ImageFeature:
        pass

    class ClassLabel:
        pass

    class Dataset(list):
        features = {"image": ImageFeature(), "question": object(), "answers": object(), "question_id": object()}

    rows = Dataset({"image": Image.new("RGB", (8, 8), (i * 20, 0, 0)), "question": "What colour?",
                    "question_id": 100 + i, "answers": [{"answer": "red", "answer_id": k} for k in range(10)]}
                   for i in range(10))
    fake.Image, fake.ClassLabel = ImageFeature, ClassLabel
    fake.load_dataset = lambda name, split=None: rows
    monkeypatch.setitem(sys.modules, "datasets", fake)
    monkeypatch.setattr("mfcli.hub.ensure_hub_reachable", lambda *a, **k: None)
    info = prepare("lmms-lab/VQAv2", tmp_path / "out", PrepareOptions())
    ev = read_eval(tmp_path / "out" / "eval.jsonl")
    assert info.kind == "vqa" and info.source == "hf:lmms-lab/VQAv2"
    assert ev[0].references == ("red",) * 10 and ev[0].id.startswith("vqav2-1")  # the dataset's question_id


def test_caption_metrics_without_pycocoevalcap_say_how_to_install(tmp_path, monkeypatch):
    import sys

    for name in ("pycocoevalcap.cider.cider", "pycocoevalcap.bleu.bleu", "pycocoevalcap.rouge.rouge"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    src = _jsonl(tmp_path / "p.jsonl", [_pred(0, "caption", "a cat", ["a cat"])])
    with pytest.raises(MfcliError) as e:
        judge_file(str(src), str(tmp_path / "j.jsonl"), make_judge("exact"))
    assert e.value.what == "caption metrics need the COCO caption evaluation code (pycocoevalcap)."
    assert e.value.remedy == "Install it with `pip install 'mfcli[caption]'`."


def test_caption_scores_edges(capsys):
    pytest.importorskip("pycocoevalcap")
    from mfcli.eval.metrics.caption import caption_scores, tokenize

    # PTBTokenizer's treatment: brackets and quotes are split off and dropped, like its punctuation
    assert tokenize('A "dog" [on] (the) {grass} -- ok...') == "a dog on the grass ok"
    assert tokenize("Don't, can't: the dog's T-shirt!") == "do n't ca n't the dog 's t-shirt"
    for outs, refs in (([], []), (["a"], [["a"], ["b"]]), (["a", "b"], [["a"]])):
        with pytest.raises(ValueError, match="^caption_scores needs one list of references per output, and at least one output$"):
            caption_scores(outs, refs)
    # a missing output (None) is an empty caption, scoring 0, and nothing is printed (pycocoevalcap's
    # Bleu prints its counts unless silenced)
    got = caption_scores([None, "a dog runs"], [["a cat sits"], ["a dog runs"]])
    assert got["cider_each"][0] == 0.0 and got["cider_each"][1] > 0 and got["rouge_l_each"][0] == 0.0
    assert capsys.readouterr().out == ""
