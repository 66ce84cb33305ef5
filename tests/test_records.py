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
