import json

import pytest

from mfcli.errors import MfcliError
from mfcli.io.records import EvalRecord, TrainRecord, read_eval, read_train

GOOD = EvalRecord("a-1", "t", "images/a.png", "cat", ("cat", "dog"), "What?").to_json()


def _write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize("bad, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ({**GOOD, "schema": "mfcli.eval/9"}, "unknown schema"),
    ({k: v for k, v in GOOD.items() if k != "labels"}, "missing field 'labels'"),
    ({**GOOD, "label": "cow"}, "not in its label set"),
    ({**GOOD, "labels": "cat,dog"}, "must be list"),
])
def test_eval_reader_names_file_and_line(tmp_path, bad, message):
    p = _write(tmp_path / "e.jsonl", [GOOD | {"id": "x"}, "", bad])
    with pytest.raises(MfcliError) as e:
        read_eval(p)
    assert f"{p}:3:" in str(e.value) and message in str(e.value)


def test_duplicate_ids(tmp_path):
    p = _write(tmp_path / "e.jsonl", [GOOD, GOOD])
    with pytest.raises(MfcliError, match="duplicate id 'a-1' \\(first on line 1\\)"):
        read_eval(p)


def test_train_record_round_trip_both_forms(tmp_path):
    rec = TrainRecord("r1", "images/r1.png", ({"from": "human", "value": "What is it? <image>"},
                                              {"from": "gpt", "value": "The object is a(n) cat."}), "t", "cat")
    for fmt in ("llava", "sharegpt"):
        p = _write(tmp_path / f"{fmt}.jsonl", [rec.to_json(fmt)])
        assert read_train(p) == [rec]


@pytest.mark.parametrize("bad, message", [
    ({"id": "1", "image": "a.png", "conversations": [{"from": "human", "value": "<image> q"}]}, "human turn followed"),
    ({"id": "1", "image": "a.png", "conversations": [{"from": "human", "value": "<image> q"},
                                                      {"from": "gpt", "value": " "}]}, "answer is empty"),
    ({"id": "1", "image": "a.png", "conversations": [{"from": "human", "value": "q"},
                                                      {"from": "gpt", "value": "a"}]}, "no <image>"),
    ({"id": "1", "conversations": []}, "missing field 'image'"),
])
def test_train_reader_rejects(tmp_path, bad, message):
    p = _write(tmp_path / "t.jsonl", [bad])
    with pytest.raises(MfcliError, match=message):
        read_train(p)


def test_dataset_info_reader(tmp_path):
    import json

    from mfcli.data.prepare import PrepareOptions, prepare
    from mfcli.errors import MfcliError
    from mfcli.io.records import read_dataset_info

    prepare("shapes", tmp_path / "s", PrepareOptions(limit=40))
    info = read_dataset_info(tmp_path / "s")
    assert info.name == "shapes" and info.role == "pretrained" and isinstance(info.labels, tuple)
    assert info.prompt == read_eval(tmp_path / "s" / "eval.jsonl")[0].prompt  # what every record asks
    assert read_dataset_info(tmp_path / "s" / "train.jsonl") == info  # beside a data file, too
    assert read_dataset_info(tmp_path) is None
    old = json.loads((tmp_path / "s" / "dataset.json").read_text())
    del old["schema"]  # written before the tag: still reads
    (tmp_path / "s" / "dataset.json").write_text(json.dumps(old))
    assert read_dataset_info(tmp_path / "s").labels == info.labels
    (tmp_path / "s" / "dataset.json").write_text('{"schema": "other/9", "name": "x"}')
    with pytest.raises(MfcliError, match="dataset/1"):
        read_dataset_info(tmp_path / "s")


def test_every_schema_tag_lives_in_records():
    """io/records.py owns every file format: no other module spells a schema tag."""
    import re
    from pathlib import Path

    import mfcli

    root = Path(mfcli.__file__).parent
    tag = re.compile(r"""["']mfcli\.[a-z_.-]+/\d+["']""")
    offenders = [f"{p.relative_to(root)}:{n}" for p in root.rglob("*.py") if p.name != "records.py"
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if tag.search(line)]
    assert not offenders


def test_judged_record_keeps_the_row_it_judged(tmp_path):
    from mfcli.io.records import JudgedRecord, read_judged

    # a foreign row (its own field names) judged: every field survives, the judgement sits beside it
    row = {"question_id": 7, "answer": "two", "gold": ["2"], "task": "count", "kind": "vqa"}
    judged = JudgedRecord(row, "vqa", "vqa", "vqa", "wrong", False, None, "vqa_accuracy", 0.0)
    out = judged.to_json()
    assert {k: out[k] for k in row if k != "kind"} == {k: v for k, v in row.items() if k != "kind"}
    assert out["schema"] == "mfcli.judged/2" and out["verdict"] == "wrong" and out["score"] == 0.0
    (tmp_path / "j.jsonl").write_text(json.dumps(out) + "\n" + json.dumps({"schema": "mfcli.pred/2", "id": "x"}) + "\n")
    with pytest.raises(MfcliError, match=r"j.jsonl:2: schema 'mfcli.pred/2' is not a judged record"):
        read_judged(tmp_path / "j.jsonl")
    (tmp_path / "j.jsonl").write_text(json.dumps(out) + "\n")
    back = read_judged(tmp_path / "j.jsonl")[0]
    assert back.to_json() == out and back.verdict == "wrong" and back.get("answer") == "two"
    (tmp_path / "k.jsonl").write_text(json.dumps({"id": "a", "output": "x"}) + "\n")
    with pytest.raises(MfcliError, match=r"k.jsonl:1: a judged record needs 'verdict'"):
        read_judged(tmp_path / "k.jsonl")


def test_rank_and_summary_records_round_trip(tmp_path):
    from mfcli.io.records import RankRecord, SummaryRecord, read_rank

    rec = RankRecord("tiny", "/m", "digits", "last", "per-image", 5, 120, 64, (3.0, 2.0), 17.5, 0.25)
    (tmp_path / "r.jsonl").write_text(json.dumps(rec.to_json()) + "\n" + json.dumps({"schema": "mfcli.rank/1",
                                                                                    "model": "m"}) + "\n")
    with pytest.raises(MfcliError, match=r"r.jsonl:2: a rank record without task, layer, erank"):
        read_rank(tmp_path / "r.jsonl")
    (tmp_path / "r.jsonl").write_text(json.dumps(rec.to_json()) + "\n")
    assert read_rank(tmp_path / "r.jsonl") == [rec]
    s = SummaryRecord("m", "accuracy", {"t": {"n": 2, "score": 0.5}}, {"n": 2})
    assert SummaryRecord.from_json(s.to_json(), "s.json") == s
    # the untagged form other tools write: {task: {...}, "ALL": {...}}, the model from the file's name
    other = SummaryRecord.from_json({"t": {"n": 2, "accuracy": 0.5}, "ALL": {"n": 2}}, "x.json", model="x")
    assert other.model == "x" and other.tasks == {"t": {"n": 2, "accuracy": 0.5}} and other.overall == {"n": 2}
    with pytest.raises(MfcliError, match="unknown schema 'mfcli.summary/9'"):
        SummaryRecord.from_json({"schema": "mfcli.summary/9", "tasks": {}}, "s.json")


def test_training_log_rows_keep_the_methods_own_figures(tmp_path):
    from mfcli.io.records import TrainLogRecord, read_train_log

    row = TrainLogRecord(3, 0.75, 1.25, 2e-4, 0.5, 0.01, {"visual_loss": 0.3, "cos_grad_pre": -0.1})
    line = json.dumps(row.to_json())
    assert list(json.loads(line))[:6] == ["step", "epoch", "loss", "lr", "grad_norm", "seconds"]
    (tmp_path / "train_log.jsonl").write_text(line + "\n" + json.dumps({"epoch": 1.0}) + "\n")
    with pytest.raises(MfcliError, match=r"train_log.jsonl:2: a training-log row without step, loss"):
        read_train_log(tmp_path / "train_log.jsonl")
    (tmp_path / "train_log.jsonl").write_text(line + "\n")
    assert read_train_log(tmp_path / "train_log.jsonl") == [row]
