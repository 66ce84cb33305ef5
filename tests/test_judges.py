import json
from pathlib import Path

import pytest

from conftest import run_cli
from fake_openai import FakeOpenAI
from mfcli.errors import MfcliError
from mfcli.eval.judges import JudgeOptions, make_judge
from mfcli.eval.judges.base import Item

MNIST = tuple(str(i) for i in range(10))
CIFAR10 = tuple("airplane automobile bird cat deer dog frog horse ship truck".split())
CIFAR100_SOME = ("apple", "aquarium fish", "boy", "dolphin", "girl", "mushroom", "orchid", "worm")
MINI_SOME = ("African hunting dog", "coral reef", "harvestman", "street sign", "yawl", "ladybug")

# (answer, label, labels, verdict): EMT Appendix C.4 and D.2, verbatim answers
PAPER = [
    ("The object is a letter.", "2", MNIST, "off_label"),  # C.4.1 Otter
    ("5.", "5", MNIST, "correct"),
    ("7.", "7", MNIST, "correct"),
    ("2.", "8", MNIST, "wrong_label"),
    ("Number 4.", "4", MNIST, "correct"),
    ("The object in the image is a frog.", "airplane", CIFAR10, "wrong_label"),  # C.4.2 LLaVA-7b
    ("The object in the image is a large black bird.", "bird", CIFAR10, "correct"),
    ("The object in the image is a deer.", "deer", CIFAR10, "correct"),
    ("The object in the image is a large airplane.", "truck", CIFAR10, "wrong_label"),
    ("bird", "orchid", CIFAR100_SOME, "off_label"),  # C.4.3 LENS: 'bird' is no CIFAR-100 label
    ("airplane, automobile, bird, cat, deer, dog, frog, horse,,", "airplane", CIFAR10, "multi_label"),  # §4.2
    ("a blue street sign says arkansas on it", "street sign", MINI_SOME, "off_label"),  # C.4.4 InstructBLIP
    ("a close up of a tree branch with a ladybug on it", "harvestman", MINI_SOME, "off_label"),
    ("a dog is standing in front of a forest with a sign that says walker hound", "African hunting dog",
     MINI_SOME, "off_label"),
    ("The object is a(n) airplane.", "airplane", CIFAR10, "correct"),  # D.2.1 linear
    ("The object is a(n) automobile.", "truck", CIFAR10, "wrong_label"),
    ("The object is a(n) aircraft carrier. The object is a(n) aircraft carrier.", "airplane", CIFAR10,
     "off_label"),  # D.2.2 LoRA
    ("The object is a(n) black-footed ferret.", "cat", CIFAR10, "off_label"),
    ("The object is a(n) white wolf.", "deer", CIFAR10, "off_label"),
    ("", "cat", CIFAR10, "empty"),
    ("   ", "cat", CIFAR10, "empty"),
    (", ".join(CIFAR10), "cat", CIFAR10, "multi_label"),  # every label listed: never correct
    ("The number is eight.", "8", MNIST, "correct"),
    ("Cats.", "cat", CIFAR10, "correct"),
    ("an aquarium_fish", "aquarium fish", CIFAR100_SOME, "correct"),
]


@pytest.mark.parametrize("answer, label, labels, verdict", PAPER)
def test_exact_on_paper_examples(answer, label, labels, verdict):
    j = make_judge("exact").judge([Item(answer, label, labels)])[0]
    assert j.verdict == verdict, (answer, j)
    assert j.correct == (verdict == "correct")


def test_exact_synonyms(tmp_path):
    (tmp_path / "syn.json").write_text(json.dumps({"aeroplane": "airplane", "plane": "airplane"}))
    j = make_judge("exact", JudgeOptions(synonyms=str(tmp_path / "syn.json")))
    assert [x.verdict for x in j.judge([Item("An aeroplane.", "airplane", CIFAR10),
                                        Item("a plane or a ship", "airplane", CIFAR10)])] == ["correct", "multi_label"]


@pytest.fixture(scope="module")
def embed():
    return make_judge("embed")


def test_embed_nearest_label_and_guards(embed):
    got = embed.judge([Item("an aeroplane", "airplane", CIFAR10), Item("a puppy", "dog", CIFAR10),
                       Item(", ".join(CIFAR10), "airplane", CIFAR10), Item("", "airplane", CIFAR10),
                       Item("a puppy", "airplane", CIFAR10)])
    assert [g.verdict for g in got] == ["correct", "correct", "multi_label", "empty", "wrong_label"]
    assert got[4].matched == "dog" and got[0].detail["margin"] > 0.02
    # every judged row records the rule it was judged by: the floor and the margin beside the values
    assert got[0].detail["floor"] == embed.floor and got[0].detail["min_margin"] == 0.02


ANIMALS = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")
SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond")
# objects in none of these label sets and in none of the floor's own answers (floor_answers.json)
UNSEEN_OUTSIDE = ["sofa", "candle", "violin", "rocket", "glove", "bucket", "carpet", "ladder", "towel", "wallet",
                  "hammer", "envelope", "pillow", "basket"]


def test_embed_never_credits_an_answer_outside_the_label_set(embed):
    """Issue 44's defect: "The object is a(n) cross." asked for an animal was a *correct* zebra (cosine
    0.227, top-2 margin 0.0225 over the 0.02 cut), "umbrella", "house" and "star" a wrong `bird`. Below the
    floor they are off-label — and so is every answer naming an object the floor was not chosen on."""
    said = ["The object is a(n) cross.", "The object is a(n) umbrella.", "The object is a(n) house.",
            "The object is a(n) star.", "umbrella", "star"]
    got = embed.judge([Item(a, "zebra", ANIMALS) for a in said])
    assert [(g.verdict, g.matched) for g in got] == [("off_label", None)] * len(said), got
    assert all(g.detail["below_floor"] and g.detail["similarity"] < g.detail["floor"] for g in got)
    items = [Item(t.format(w), labels[0], labels) for labels in (ANIMALS, CIFAR10, SHAPES) for w in UNSEEN_OUTSIDE
             for t in ("The object is a(n) {}.", "{}", "It is a {}.")]
    assert not [(i.output, g.matched) for i, g in zip(items, embed.judge(items)) if g.matched]
    # a floor set by hand is used as given: at 0 the old behaviour returns (the zebra)
    old = make_judge("embed", JudgeOptions(floor=0.0)).judge([Item(said[0], "zebra", ANIMALS)])[0]
    assert (old.verdict, old.matched) == ("correct", "zebra")


def test_the_floor_is_the_least_that_credits_no_outside_answer():
    """The calibration rule on hand-set similarities: the highest similarity at which an outside answer
    would be credited (margin and negation passed), plus 0.01 — outside answers the margin already
    refuses do not raise it; on-label answers never lower it."""
    from mfcli.eval.judges.floor import FloorItem, calibrate

    labels = ("a", "b")
    items = [FloorItem(labels, "x1", None), FloorItem(labels, "x2", None), FloorItem(labels, "x3", None),
             FloorItem(labels, "a1", "a"), FloorItem(labels, "a2", "a"), FloorItem(labels, "b1", "b")]

    class Fixed:
        nearest = staticmethod(lambda items: [("a", 0.41, True), ("b", 0.30, True), ("a", 0.90, False),
                                              ("a", 0.80, True), ("a", 0.45, True), ("a", 0.95, True)])

    c = calibrate(Fixed(), items)
    assert c.floor == pytest.approx(0.42) and c.outside_max == pytest.approx(0.41)
    # a1 judged and right; a2 right but at 0.45 >= 0.42, kept; b1 judged as a: not kept
    assert c.on_label_kept == pytest.approx(2 / 3) and (c.n_outside, c.n_on_label) == (3, 3)


def test_the_floor_set_covers_every_label_set_and_names_no_label_as_outside():
    from mfcli.eval.judges.floor import floor_items

    items = floor_items()
    assert not [i for i in items if i.truth is None and any(w in i.answer.split() for w in i.labels)]
    assert {len(i.labels) for i in items} >= {6, 8, 10}
    assert sum(i.truth is None for i in items) > 1000 and sum(i.truth is not None for i in items) > 400


def test_cascade_sends_answers_below_the_floor_to_openai(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAI() as server:
        j = make_judge("cascade", JudgeOptions(openai=True, base_url=server.url, cache=str(tmp_path / "c.jsonl")))
        got = j.judge([Item("The object is a(n) cross.", "zebra", ANIMALS), Item("an aeroplane", "airplane", CIFAR10)])
        assert [g.stage for g in got] == ["openai", "embed"] and len(server.requests) == 1
    assert got[0].verdict == "off_label"


def test_embed_abstains_below_margin(embed):
    j = make_judge("embed", JudgeOptions(margin=0.99))
    assert j.judge([Item("an aeroplane", "airplane", CIFAR10)])[0].verdict == "off_label"


def test_cascade_records_stage(embed):
    got = make_judge("cascade").judge([Item("The number is 8.", "8", MNIST), Item("an aeroplane", "airplane", CIFAR10)])
    assert [(g.verdict, g.stage) for g in got] == [("correct", "exact"), ("correct", "embed")]


@pytest.mark.parametrize("answer, label", [("This is definitely not a horse.", "horse"), ("no cat here", "cat")])
def test_a_negated_mention_never_matches_that_label(embed, answer, label):
    item = Item(answer, label, CIFAR10)
    exact = make_judge("exact").judge([item])[0]
    assert (exact.verdict, exact.matched, exact.detail) == ("off_label", None, {"negated": [label]})
    cascade = make_judge("cascade").judge([item])[0]
    assert (cascade.verdict, cascade.stage) == ("off_label", "exact")  # decided before any similarity
    alone = embed.judge([item])[0]  # the embedding alone is nearest the negated label: it abstains
    assert alone.matched != label and not alone.correct


def test_clip_judge_with_tiny_clip(pico):
    """An answer that *is* a label's CLIP prompt has similarity 1 with that label (the nearest one, with
    no abstention margin and no floor); the pico CLIP barely tells its shapes apart, so the default margin
    abstains — and its calibrated floor credits nothing, since its text tower puts outside objects as
    near its labels as the labels' own names."""
    from mfcli.data.prompts import clip_prompt

    shapes = ("circle", "square")
    items = [Item(clip_prompt("object", "circle"), "circle", shapes), Item(clip_prompt("object", "square"), "circle", shapes),
             Item("", "circle", ("circle",))]
    got = make_judge("clip", JudgeOptions(clip_model="tiny-clip", margin=0.0, floor=0.0)).judge(items)
    assert [(g.verdict, g.matched) for g in got] == [("correct", "circle"), ("wrong_label", "square"), ("empty", None)]
    assert got[0].detail["similarity"] == pytest.approx(1.0, abs=1e-5)
    margin = got[0].detail["margin"]
    abstained = make_judge("clip", JudgeOptions(clip_model="tiny-clip", margin=margin + 1e-3, floor=0.0)
                           ).judge(items[:1])
    assert abstained[0].verdict == "off_label"


def test_clip_judge_offline_hub_id_is_clear():
    with pytest.raises(MfcliError, match="offline"):
        make_judge("clip", JudgeOptions(clip_model="openai/clip-vit-large-patch14"))


def test_unknown_judge_suggests():
    with pytest.raises(MfcliError, match="Did you mean 'exact'"):
        make_judge("exakt")


# --- openai, against a real HTTP server on 127.0.0.1 -------------------------------------------

ITEMS = [Item("The object is a(n) cat.", "cat", CIFAR10), Item("a dog", "cat", CIFAR10),
         Item("a kitten on a sofa", "cat", CIFAR10), Item("", "cat", CIFAR10),
         Item("cat, dog", "cat", CIFAR10)]


def _openai(server, tmp_path, **kw):
    from mfcli.eval.judges.openai_judge import OpenAIJudge

    return OpenAIJudge("gpt-3.5-turbo", server.url, cache=tmp_path / "cache.jsonl", backoff=0.01, **kw)


def test_openai_verbatim_prompt_params_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAI() as server:
        got = _openai(server, tmp_path).judge(ITEMS)
        assert [g.verdict for g in got] == ["correct", "wrong_label", "off_label", "empty", "multi_label"]
        assert len(server.requests) == 3  # empty and multi-label are decided without asking
        body = next(r for r in server.requests if "a(n) cat" in r["messages"][0]["content"])
        assert body["messages"][0]["content"] == ('Please only answer the question in yes or no. Is the "Prediction" '
                                                  'correctly predicting the right "Label"? Label: cat; '
                                                  'Prediction: The object is a(n) cat..')
        for k, v in dict(model="gpt-3.5-turbo", temperature=0.2, max_tokens=64, top_p=1, frequency_penalty=0,
                         presence_penalty=0).items():
            assert body[k] == v
        judge = _openai(server, tmp_path)
        again = judge.judge(ITEMS)
        assert again == got and len(server.requests) == 3 and judge.calls == 0  # a re-run costs nothing


def test_openai_retries_429_500_and_timeouts(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAI() as server:
        server.plan = ["429", "500", "slow", "429"]
        server.slow_seconds = 30.0  # never waited out: the client times out after 0.2 s and retries
        judge = _openai(server, tmp_path, concurrency=1, timeout=0.2)
        got = judge.judge(ITEMS[:3])
        assert [g.verdict for g in got] == ["correct", "wrong_label", "off_label"]
        assert len(server.requests) == 3 + 4  # every injected failure was retried


def test_openai_unreachable_keeps_what_was_judged(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAI() as server:
        server.fail_after = 1
        with pytest.raises(MfcliError, match="cached; re-run"):
            _openai(server, tmp_path, concurrency=1, max_retries=2).judge(ITEMS[:3])
        assert len((tmp_path / "cache.jsonl").read_text().splitlines()) == 1  # the one answer is kept
        server.fail_after = None
        got = _openai(server, tmp_path).judge(ITEMS[:3])
        assert [g.verdict for g in got] == ["correct", "wrong_label", "off_label"]


def test_openai_missing_key_fails_before_work(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MfcliError, match="OPENAI_API_KEY"):
        make_judge("openai")


SECRET = "sk-very-secret-0123456789"


def _files_hold_secret(*roots) -> list[str]:
    return [str(f) for root in roots for f in Path(root).rglob("*") if f.is_file() and SECRET.encode() in f.read_bytes()]


@pytest.mark.parametrize("refused", [False, True])
def test_api_key_never_reaches_files_or_logs(tmp_path, refused):
    """Success and refusal (a 401 whose body quotes the key, as the real API's does), through the CLI,
    with the default reply cache under MFCLI_CACHE: the key is in no file and on no output."""
    preds = tmp_path / "run" / "p.jsonl"
    preds.parent.mkdir()
    preds.write_text("".join(json.dumps({"id": str(i), "task": "t", "output": it.output, "label": it.label,
                                         "labels": list(it.labels)}) + "\n" for i, it in enumerate(ITEMS)))
    cache = tmp_path / "mfcli-cache"
    with FakeOpenAI() as server:
        server.plan = ["401"] * 20 if refused else []
        r = run_cli("judge", preds, "--judge", "openai", "--base-url", server.url, "--out", tmp_path / "run" / "j.jsonl",
                    "--summary", tmp_path / "run" / "s.json", env={"OPENAI_API_KEY": SECRET, "MFCLI_CACHE": str(cache)})
        assert server.headers[0]["authorization"] == f"Bearer {SECRET}"  # it was used ...
    if refused:
        assert r.returncode == 1 and "refused the request (HTTP 401)" in r.stderr
    else:
        assert r.returncode == 0, r.stderr
        assert (cache / "judge-cache" / "openai.jsonl").is_file()  # the default cache was written
    assert not _files_hold_secret(tmp_path)  # ... and written nowhere
    assert SECRET not in r.stderr + r.stdout


def test_api_key_never_reaches_server_failure_messages(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("MFCLI_CACHE", str(tmp_path / "mfcli-cache"))
    from mfcli.eval.judges.openai_judge import OpenAIJudge

    with FakeOpenAI() as server:
        server.fail_after = 1
        judge = OpenAIJudge("gpt-3.5-turbo", server.url, concurrency=1, max_retries=1, backoff=0.01)
        with pytest.raises(MfcliError) as err:
            judge.judge(ITEMS[:3])
    assert judge.cache_path.is_relative_to(tmp_path / "mfcli-cache")
    assert SECRET not in str(err.value) + " ".join(map(str, err.value.args))
    assert not _files_hold_secret(tmp_path)


# --- the judge command ------------------------------------------------------------------------

def test_judge_cli_stdin_stdout_foreign_fields_and_summary(tmp_path):
    rows = [{"answer": "The object is a(n) cat.", "gold": "cat", "classes": list(CIFAR10), "task": "c10"},
            {"answer": "", "gold": "dog", "classes": list(CIFAR10), "task": "c10"},
            {"answer": "cat, dog", "gold": "dog", "classes": list(CIFAR10), "task": "c10"}]
    r = run_cli("judge", "-", "--judge", "exact", "--output-field", "answer", "--label-field", "gold",
                "--labels-field", "classes", "--summary", tmp_path / "s.json",
                input="".join(json.dumps(x) + "\n" for x in rows))
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["verdict"] for o in out] == ["correct", "empty", "multi_label"]
    assert [o["correct"] for o in out] == [True, False, False] and out[0]["matched"] == "cat"
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["schema"] == "mfcli.summary/2" and s["model"] is None  # foreign rows name no model
    c10 = s["tasks"]["c10"]
    assert c10["n"] == 3 and abs(c10["accuracy"] - 1 / 3) < 1e-9 and c10["verdicts"]["empty"] == 1
    assert "multi_label" in r.stderr and "c10" in r.stderr  # the table


@pytest.mark.parametrize("row, message", [
    ({"output": "x", "label": "cow", "labels": ["cat"]}, "not in its label set"),
    ({"output": "x", "label": "cat"}, "missing field 'labels'"),
    ({"schema": "mfcli.pred/0", "output": "x", "label": "cat", "labels": ["cat"]}, "schema 'mfcli.pred/0'"),
])
def test_judge_cli_bad_input(tmp_path, row, message):
    (tmp_path / "p.jsonl").write_text(json.dumps(row) + "\n")
    r = run_cli("judge", tmp_path / "p.jsonl", "--judge", "exact", "--out", tmp_path / "j.jsonl")
    assert r.returncode == 1 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert f"{tmp_path / 'p.jsonl'}:1:" in r.stderr
    assert not (tmp_path / "j.jsonl").exists()


def test_judge_cli_unknown_judge_and_missing_key(tmp_path):
    (tmp_path / "p.jsonl").write_text(json.dumps({"output": "x", "label": "cat", "labels": ["cat"]}) + "\n")
    r = run_cli("judge", tmp_path / "p.jsonl", "--judge", "cascad")
    assert r.returncode == 2 and "Did you mean 'cascade'" in r.stderr  # a usage error, as click's own
    r = run_cli("judge", tmp_path / "p.jsonl", "--judge", "openai", env={"OPENAI_API_KEY": ""})
    assert r.returncode == 1 and "OPENAI_API_KEY" in r.stderr


def test_exact_judgement_fields_name_the_judge_and_the_evidence():
    from mfcli.eval.judges.exact import ExactJudge

    judge = ExactJudge()  # alone: decisive by default
    multi, off, hit, none, empty = judge.judge([
        Item("a yawl, or maybe a ladybug", "yawl", MINI_SOME),  # label-set order, not alphabetical
        Item("a large red metal bird flying", "bird", CIFAR10),
        Item("bird", "bird", CIFAR10), Item("no idea", "bird", CIFAR10), Item("", "bird", CIFAR10)])
    assert (multi.verdict, multi.matched, multi.detail) == ("multi_label", None, {"named": ["yawl", "ladybug"]})
    assert (off.verdict, off.matched, off.detail) == ("off_label", "bird", {"extra_words": 4})
    assert (none.verdict, none.matched) == ("off_label", None)
    assert {j.stage for j in (multi, off, hit, none, empty)} == {"exact"} and empty.verdict == "empty"
    assert ExactJudge(decisive=False).judge_one(Item("no idea", "bird", CIFAR10)) is None  # a cascade goes on


@pytest.mark.parametrize("content, message", [
    (None, "synonyms file {p} not found. Give a JSON object mapping synonym to label."),
    ("{oops", "{p}: not valid JSON (Expecting property name enclosed in double quotes). "
              "Give a JSON object mapping synonym to label."),
    ('["plane"]', "{p}: expected a JSON object {{synonym: label}}. Fix the file."),
])
def test_bad_synonyms_file_is_one_line_that_says_what_to_do(tmp_path, content, message):
    from mfcli.eval.judges.exact import load_synonyms

    p = tmp_path / "syn.json"
    if content is not None:
        p.write_text(content, encoding="utf-8")
    with pytest.raises(MfcliError) as e:
        load_synonyms(str(p))
    assert str(e.value) == message.format(p=p)

