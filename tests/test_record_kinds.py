"""The record-kind registry (kinds/): each kind's facts as the papers and lmms-eval fix them, every kind
complete (a metric that scores it, a prompt, a reader for its rows), and a new kind added the way a
user would — one registered `RecordKind` and the judge that scores it — reached by prepare, the record
readers, emt's generation caps and judge with no other edit."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from mfcli.data.prepare import prepare
from mfcli.errors import MfcliError
from mfcli.eval.predictions import generation_caps
from mfcli.eval.judges import JUDGES, make_judge, metric_judge, register as register_judge
from mfcli.eval.judges.base import CORRECT, EMPTY, ERROR, WRONG, Judgement
from mfcli.eval.judging import judge_file
from mfcli.io.records import read_eval, read_train
from mfcli.kinds import KINDS, QaFields, QaRow, RecordKind, detect_kind, kind_of, register
from mfcli.kinds.base import field_name, question_of


def test_the_kinds_and_their_generation_caps():
    # EMT's answers are one sentence (32); lmms-eval caps short answers and letters at 16, captions at 64
    assert generation_caps() == {"classification": 32, "vqa": 16, "caption": 64, "choice": 16, "text": 16}
    assert [k for k, v in KINDS.items() if v.labelled] == ["classification"]
    assert [k for k, v in KINDS.items() if v.corpus] == ["caption"]  # CIDEr's document frequencies: per task
    assert [k for k, v in KINDS.items() if v.options] == ["choice"]
    assert {k for k, v in KINDS.items() if v.from_conversations} == {"vqa", "caption"}


@pytest.mark.parametrize("row, kind", [
    ({"image": "a.png", "label": "cat"}, "classification"),
    ({"image": "a.png", "question": "What?", "answers": ["x"]}, "vqa"),
    ({"image": "a.png", "answer": "x"}, "vqa"),
    ({"image": "a.png", "captions": ["a cat"], "question": "Describe."}, "caption"),  # captions before question
    ({"image": "a.png", "question": "Which?", "options": ["a", "b"], "answer": 0}, "choice"),  # options first
    ({"image": "a.png", "question": "Which?", "A": "a", "B": "b", "answer": "A"}, "choice"),  # MMBench columns
    ({"image": "a.png", "question": "Which?", "A": "a", "answer": "A"}, "vqa"),  # one lettered column: no options
])
def test_rows_are_recognised_in_the_documented_order(row, kind):
    assert detect_kind(row, QaFields()) == kind


def test_every_kind_is_complete():
    """What each layer asks of a kind answers for every registered one."""
    for kind in KINDS.values():
        assert kind.summary and kind.max_new_tokens >= 1
        assert isinstance(kind.detect({}, QaFields()), bool)
        if kind.labelled:
            continue
        assert kind.references  # what its references hold, for error messages
        assert metric_judge(kind.name).kind == kind.name  # a judge scores it
        assert JUDGES[next(n for n, j in JUDGES.items() if j.kind == kind.name)].verdicts
        options = ("red", "blue") if kind.options else ()
        assert kind.prompt("What colour?", options, "", "")
        assert kind.train_answers(("b", "a", "b")) and kind.bucket("What colour?", "b")
        if kind.corpus:
            assert hasattr(metric_judge(kind.name), "corpus")


def test_training_targets_and_buckets_by_kind():
    vqa, caption, choice = kind_of("vqa"), kind_of("caption"), kind_of("choice")
    assert vqa.train_answers(("two", "2", "2", "two", "3")) == ["two"]  # most frequent; ties: first given
    assert vqa.train_answers(("3", "2", "2")) == ["2"]
    assert caption.train_answers(("A dog.", "A cat.", "A dog.")) == ["A dog.", "A cat."]  # each distinct once
    assert caption.train_label("A dog.") == "" and vqa.train_label("2") == "2"
    assert vqa.bucket("How many dogs?", "2") == "how" and caption.bucket("", "A dog.") == "all"
    assert kind_of("classification").bucket("", "cat") == "cat"
    assert choice.prompt("Which?", ("a cat", "a dog"), "", "").splitlines()[1:3] == ["A. a cat", "B. a dog"]
    assert vqa.prompt("How many?", (), "Q: {question}", "") == "Q: How many?"


def test_an_unknown_kind_names_the_registered_ones(tmp_path):
    with pytest.raises(MfcliError, match=r"x.jsonl:3: unknown kind 'ocr'.*classification, vqa, caption, choice"):
        kind_of("ocr", "x.jsonl:3")
    r = run_cli("prepare", "digits", "--kind", "ocr", "--out", tmp_path / "d")
    assert r.returncode in (1, 2)
    assert "unknown --kind 'ocr'" in r.stderr and "Traceback" not in r.stderr


# ---- a new kind, added as a user would: one RecordKind, one judge ------------------------------

class Number(RecordKind):
    """A count answered as a number ("How many dogs?" → "3"), scored by whether the first number in the
    answer is the reference."""

    name = "number"
    summary = "a count; the first number in the answer against `references`"
    max_new_tokens = 8
    detect_rank = 5  # its rows hold a question too: before vqa
    references = "the correct count"

    def detect(self, row, fields):
        return "count" in row

    def parse_row(self, row, fields, where, csv):
        count = row[field_name(row, None, ("count",), where, self.name, "--answers-field")]
        return QaRow(question_of(row, fields, where, self.name), (str(count),))

    def check(self, references, labels, where):
        if not all(r.isdigit() for r in references):
            raise MfcliError(f"{where}: a number record's references must be counts, got {list(references)}.",
                             "Give whole numbers.")

    def prompt(self, question, options, given, default):
        return f"{question}\nAnswer with a number."


class NumberJudge:
    name = "number"
    kind = "number"
    metric = "accuracy"

    def judge(self, items):
        out = []
        for it in items:
            found = re.findall(r"\d+", it.output)
            if not found:
                out.append(Judgement(EMPTY, None, self.name))
            else:
                out.append(Judgement(CORRECT if found[0] == it.references[0] else WRONG, found[0], self.name))
        return out


@pytest.fixture
def number_kind(monkeypatch):
    monkeypatch.setitem(KINDS, "number", None)  # both registries as they were after the test
    monkeypatch.setitem(JUDGES, "number", None)
    register(Number)
    register_judge("number", summary="the first number in the answer", kind="number",
                   verdicts=(CORRECT, WRONG, EMPTY, ERROR))(lambda o, decisive=True: NumberJudge())
    yield


def _counting_table(root, n=20):
    (root / "img").mkdir(parents=True)
    rows = []
    for i in range(n):
        Image.fromarray(np.full((8, 8, 3), 10 * i, np.uint8)).save(root / "img" / f"{i}.png")
        rows.append({"image": f"img/{i}.png", "question": f"How many dots? ({i})", "count": i % 4})
    (root / "counts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "counts.jsonl"


def test_a_new_kind_is_one_registered_module(number_kind, tmp_path):
    info = prepare(str(_counting_table(tmp_path)), tmp_path / "out")
    assert info.kind == "number"  # detected from its rows, before vqa
    held = read_eval(tmp_path / "out" / "eval.jsonl")
    assert held and all(r.kind == "number" and r.prompt.endswith("\nAnswer with a number.") for r in held)
    assert all(r.references == (r.label,) for r in held)
    train = read_train(tmp_path / "out" / "train.jsonl")
    assert all(t.answer.isdigit() and t.label == t.answer for t in train)  # the default hooks: one answer
    assert set(info.counts["train"]) == {"how"}  # counted per question form
    assert generation_caps()["number"] == 8

    # the record readers check it with its own rule, naming file and line
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**held[0].to_json(), "references": ["three"]}) + "\n")
    with pytest.raises(MfcliError, match=r"bad.jsonl:1: a number record's references must be counts"):
        read_eval(bad)

    # judge: a label judge for classification leaves the number records to their own metric
    preds = tmp_path / "preds.jsonl"
    answers = [(f"There are {r.label} dots.", "I see 9.", "")[i % 3] for i, r in enumerate(held)]  # counts: 0-3
    preds.write_text("".join(json.dumps({**r.to_json(), "output": a}) + "\n" for r, a in zip(held, answers)))
    summary = judge_file(str(preds), str(tmp_path / "judged.jsonl"), make_judge("exact"))
    s = summary.tasks["counts"]
    assert list(s["verdicts"]) == ["correct", "wrong", "empty", "error"]  # the kind's judge's verdicts
    n_right = len(range(0, len(held), 3))
    assert s["n"] == len(held) and s["verdicts"]["correct"] == n_right
    assert s["verdicts"]["empty"] == len(range(2, len(held), 3))
    assert s["score"] == pytest.approx(n_right / len(held))


def test_a_new_kind_reaches_the_command_line(number_kind, tmp_path):
    r = run_cli("prepare", _counting_table(tmp_path), "--kind", "number", "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    r = run_cli("prepare", "digits", "--kind", "sound", "--out", tmp_path / "x")
    assert "classification, vqa, caption, choice, text, number" in r.stderr


# ---- each kind's own row reader ---------------------------------------------------------------

@pytest.mark.parametrize("kind, row, fields, expected", [
    ("vqa", {"q": "What?<image>", "a": [{"answer": "red"}, "red", 2]}, QaFields(question="q", answers="a"),
     QaRow("What?", ("red", "red", "2"))),
    ("caption", {"caps": [{"raw": "a dog"}, {"text": "a  cat"}]}, QaFields(captions="caps"), QaRow("", ("a dog", "a cat"))),
    ("choice", {"q": "Which?", "opts": ["x", "y", "z"], "a": 2}, QaFields(question="q", answers="a", options="opts"),
     QaRow("Which?", ("C",), ("x", "y", "z"))),
])
def test_each_kind_reads_the_columns_the_user_names(kind, row, fields, expected):
    assert kind_of(kind).detect(row, fields)
    assert kind_of(kind).parse_row(row, fields, "t.jsonl:4", csv=False) == expected
    for name in [v for v in vars(fields).values() if v]:  # each named column, missing: file, line, kind, flag
        with pytest.raises(MfcliError) as e:
            kind_of(kind).parse_row({k: v for k, v in row.items() if k != name}, fields, "t.jsonl:4", csv=False)
        assert f"t.jsonl:4: a {kind} row needs '{name}'" in str(e.value) and "-field" in e.value.remedy


def test_a_csv_cell_holds_a_list_and_a_json_string_one_item():
    vqa, fields = kind_of("vqa"), QaFields()
    assert vqa.parse_row({"question": "Q", "answers": "a|b"}, fields, "x", csv=True).references == ("a", "b")
    assert vqa.parse_row({"question": "Q", "answers": "a|b"}, fields, "x", csv=False).references == ("a|b",)
    assert vqa.parse_row({"question": "Q", "answer": 3}, fields, "x", csv=False).references == ("3",)
    for bad, says in ((True, "must be a list of strings, got bool"), ([True], "must be strings"), (["", " "], "are empty")):
        with pytest.raises(MfcliError, match=f"x: (the )?reference answers {says}"):
            vqa.parse_row({"question": "Q", "answers": bad}, fields, "x", csv=False)


@pytest.mark.parametrize("answer, letter", [(0, "A"), (2, "C"), ("1", "B"), ("c", "C"), ("dog", "B"), (" B ", "B")])
def test_the_correct_option_as_index_letter_or_text(answer, letter):
    """ScienceQA gives a 0-based index, MMBench a letter, some sets the option's text."""
    from mfcli.kinds.choice import choice_letter

    assert choice_letter(answer, ("cat", "dog", "bird"), "x") == letter


@pytest.mark.parametrize("answer", [3, "3", True, "D", "cow"])
def test_an_answer_that_is_no_option_is_refused(answer):
    from mfcli.kinds.choice import choice_letter

    with pytest.raises(MfcliError, match="x: answer .* is none of the options' letters ABC"):
        choice_letter(answer, ("cat", "dog", "bird"), "x")


def test_mmbench_columns_end_at_the_first_empty_one():
    from mfcli.kinds.choice import letter_options

    assert letter_options({"A": "x", "B": 2.5, "C": float("nan"), "D": "w"}) == ("x", "2.5")  # pandas' NaN: empty
    assert letter_options({"A": " a  b ", "B": "", "C": "z"}) == ("a b",)


def test_the_caption_instruction_in_order_of_precedence():
    caption = kind_of("caption")
    assert caption.prompt("Row's own.", (), "User's.", "Source's.") == "User's."
    assert caption.prompt("Row's own.", (), "", "Source's.") == "Row's own."
    assert caption.prompt("", (), "", "Source's.") == "Source's."
    assert caption.prompt("", (), "", "") == "Provide a one-sentence caption for the provided image."


def test_a_choice_record_needs_two_options_and_one_of_their_letters():
    choice = kind_of("choice")
    choice.check(("b",), ("x", "y"), "x")  # a lower-case letter is read as its upper case
    for refs, options, says in ((("A",), ("x",), "at least two options"), (("C",), ("x", "y"), "one letter of AB"),
                                (("A", "B"), ("x", "y"), "one letter of AB")):
        with pytest.raises(MfcliError, match=f"x: a choice record.*{says}") as e:
            choice.check(refs, options, "x")
        assert e.value.remedy


def test_rows_read_in_their_other_layouts_and_malformed_ones_named():
    vqa, caption, choice, none = kind_of("vqa"), kind_of("caption"), kind_of("choice"), QaFields()
    assert vqa.detect({"q": "x"}, QaFields(question="q")) and vqa.detect({"a": "x"}, QaFields(answers="a"))
    with pytest.raises(MfcliError, match="t:1: a vqa row needs 'question'"):
        vqa.parse_row({"answers": ["x"]}, none, "t:1", csv=False)
    # MMBench with two lettered options; options as {"text": …} dicts; a CSV cell of options
    assert choice.parse_row({"question": "Q", "A": "x", "B": "y", "answer": "B"}, none, "t:1", False).options == ("x", "y")
    assert choice.parse_row({"question": "Q", "options": [{"text": "x"}, {"option": "y"}], "answer": 1}, none, "t:1",
                            False) == QaRow("Q", ("B",), ("x", "y"))
    assert choice.parse_row({"question": "Q", "options": "x|y", "answer": "x"}, none, "t:1", True).options == ("x", "y")
    # a named options column wins over lettered columns
    row = {"question": "Q", "opts": ["p", "q", "r"], "A": "x", "B": "y", "answer": "C"}
    assert choice.parse_row(row, QaFields(options="opts"), "t:1", False).options == ("p", "q", "r")
    with pytest.raises(MfcliError, match=r"t:1: options must be strings \(or dicts with 'text' / 'option'\)"):
        choice.parse_row({"question": "Q", "options": ["x", None], "answer": 0}, none, "t:1", False)
    with pytest.raises(MfcliError, match=r"t:1: reference captions must be strings \(or dicts with 'raw' / 'caption' / "
                                         r"'text'\)"):
        caption.parse_row({"captions": [3.5, ["x"]]}, none, "t:1", False)
