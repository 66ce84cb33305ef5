"""The forgetting watch (issue 29): its figures, best/, early stopping, resume and two processes."""

import json
from pathlib import Path
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import run_cli
from mfcli.train.loop import run_finetune
from mfcli.train.methods import finetune_options
from mfcli.train.watch import Tracker, Watch, WatchOptions, make_record

SMALL = dict(method="full", batch_size=4, epochs=2, lr=1e-3)  # 16 training examples: 4 steps an epoch


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from mfcli.data.prepare import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("watch-data")
    # the watch samples the validation split (val.jsonl)
    prepare("animals", root / "animals", PrepareOptions(limit=26, val_fraction=0.25))  # target: 16 train, 5 val, 5 eval
    prepare("shapes", root / "shapes", PrepareOptions(limit=30, val_fraction=0.25))  # pre-trained: 6 val, 6 eval
    return root


@pytest.fixture(scope="module")
def one_process_watched(pico, data, tmp_path_factory):
    """The 1-process watched run the DDP and FSDP tests compare with, trained once (only read)."""
    watch = WatchOptions((str(data / "shapes"), str(data / "animals")), every="2")
    return run_finetune("tiny", [str(data / "animals")], tmp_path_factory.mktemp("one") / "run",
                        finetune_options(method="full", batch_size=4, epochs=1, lr=2e-5), progress=False, watch=watch)


def records(run):
    return [json.loads(x) for x in (run / "watch.jsonl").read_text().splitlines()]


def without_time(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def h(a, b):
    return 2 * a * b / (a + b)


# ---- the figures of one evaluation ---------------------------------------------------------------

def test_record_figures_by_hand():
    base = {"digits": 80.0, "shapes": 50.0, "counting": 10.0}
    scores = {"digits": 60.0, "shapes": 50.0, "counting": 70.0}
    metrics = dict.fromkeys(base, "accuracy")
    r = make_record(30, 1.5, scores, metrics, dict.fromkeys(base, 100), ("counting",), base)
    assert r.kept == {"digits": 75.0, "shapes": 100.0}  # % of each task's own step-0 score
    assert r.kept_mean == 87.5 and r.target == 70.0 and r.target_gain == 60.0
    assert r.h == pytest.approx(h(55.0, 70.0))  # Model Tailor: H of the two groups' averages
    assert r.h_mdgd == pytest.approx(h(55.0, 60.0))  # MDGD: H of the pre-trained and all-task averages
    assert r.h_kept == pytest.approx(h(87.5, 70.0))


def _rec(step, pre, tgt):
    return make_record(step, step / 4, {"shapes": pre, "animals": tgt}, {"shapes": "accuracy", "animals": "accuracy"},
                       {"shapes": 6, "animals": 4}, ("animals",), {"shapes": 80.0, "animals": 20.0})


def test_tracker_picks_the_highest_h_and_stops_after_patience():
    series = [(80, 20), (70, 60), (60, 75), (40, 90), (50, 70), (45, 72)]
    hs = [h(p, t) for p, t in series]  # 32, 64.6, 67.0, 55.4, 58.3, 56.4
    best = max(range(len(hs)), key=hs.__getitem__)
    t = Tracker(WatchOptions(("x",), patience=3))
    out = [t.update(_rec(4 * i, p, q)) for i, (p, q) in enumerate(series)]
    assert [r.best for r in out] == [i in (0, 1, 2) for i in range(6)] and best == 2
    assert [r.stop is not None for r in out] == [False] * 5 + [True]  # the 3rd evaluation after step 8
    assert out[-1].best_step == 8


def test_tracker_kept_floor_and_kept_minimum():
    # "the most target while kept ≥ 70 %": 64/80 = 80 % kept qualifies, 40/80 = 50 % does not
    t = Tracker(WatchOptions(("x",), best="target", kept_min=70))
    out = [t.update(_rec(4 * i, p, q)) for i, (p, q) in enumerate([(80, 20), (64, 60), (40, 90)])]
    assert [r.value for r in out] == [20, 60, None] and [r.best for r in out] == [True, True, False]
    f = Tracker(WatchOptions(("x",), floor=60))
    assert [f.update(_rec(4 * i, p, q)).stop is not None for i, (p, q) in enumerate([(80, 20), (56, 60), (40, 90)])] \
        == [False, False, True]  # 56/80 = 70 % is above the floor, 40/80 = 50 % below


# ---- a scripted run: the evaluation is replaced by a hand-made series ----------------------------

def test_scripted_run_keeps_the_best_h_and_stops_after_patience(pico, data, tmp_path, monkeypatch):
    series = iter([(80, 20), (70, 60), (60, 75), (40, 90), (50, 70), (45, 72), (44, 73), (43, 74)])

    def scripted(self, trainer):
        pre, tgt = next(series)
        return ({"shapes": float(pre), "animals": float(tgt)}, {"shapes": "accuracy", "animals": "accuracy"},
                {"shapes": 6, "animals": 4})

    monkeypatch.setattr(Watch, "score", scripted)
    # its own sample size: the step-0 cache is keyed by the sample, and these scores are made up
    watch = WatchOptions((str(data / "shapes"), str(data / "animals")), every="2", patience=3, n=5)
    run = run_finetune("tiny", [str(data / "animals")], tmp_path / "run",
                       finetune_options(**{**SMALL, "epochs": 4}, save_steps=2), progress=False, watch=watch)
    rows = records(run)
    # evaluations at steps 0, 2, 4, 6, 8, 10: H 32, 64.6, 67.0 (best, step 4), 55.4, 58.3, 56.4 -> stop
    assert [r["step"] for r in rows] == [0, 2, 4, 6, 8, 10]
    assert [r["best"] for r in rows] == [True, True, True, False, False, False]
    assert rows[-1]["stop"] and "not improved for 3" in rows[-1]["stop"] and rows[-1]["best_step"] == 4
    best = json.loads((run / "best" / "mfcli.json").read_text())["metrics"]["watch"]
    assert best["step"] == 4 and best["h"] == pytest.approx(h(60, 75))
    a, b = load_file(str(run / "best" / "model.safetensors")), load_file(str(run / "epoch-1" / "model.safetensors"))  # step 4 = epoch 1
    assert all(torch.equal(a[k], b[k]) for k in a)  # best/ holds step 4's weights, not the last ones
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 10 and (run / "step-10").is_dir()  # stopped there, resumable


def test_step0_scores_are_cached_by_model_and_sample(pico, data, tmp_path, monkeypatch):
    calls = []
    real = Watch.score

    def counting(self, trainer):
        calls.append(trainer.model.training)
        return real(self, trainer)

    monkeypatch.setattr(Watch, "score", counting)
    watch = WatchOptions((str(data / "shapes"), str(data / "animals")), n=3)
    opts = finetune_options(**{**SMALL, "epochs": 1})
    run_finetune("tiny", [str(data / "animals")], tmp_path / "a", opts, progress=False, watch=watch)
    assert len(calls) == 2  # step 0 and the epoch's end
    run_finetune("tiny", [str(data / "animals")], tmp_path / "b", opts, progress=False, watch=watch)
    assert len(calls) == 3  # step 0 came from the cache
    assert records(tmp_path / "a")[0] == {**records(tmp_path / "b")[0], "seconds": records(tmp_path / "a")[0]["seconds"]}
    other = WatchOptions((str(data / "shapes"), str(data / "animals")), n=2)  # another sample: measured again
    run_finetune("tiny", [str(data / "animals")], tmp_path / "c", opts, progress=False, watch=other)
    assert len(calls) == 5


# ---- resume and processes, with the real evaluation ---------------------------------------------

def test_resume_after_a_kill_gives_the_uninterrupted_history(pico, data, tmp_path):
    watch = WatchOptions((str(data / "shapes"), str(data / "animals")), every="1")
    opts = finetune_options(**SMALL, save_steps=3)
    ref = run_finetune("tiny", [str(data / "animals")], tmp_path / "ref", opts, progress=False, watch=watch)
    cut = run_finetune("tiny", [str(data / "animals")], tmp_path / "cut", opts, progress=False, watch=watch)
    for d in cut.iterdir():  # as if killed at step 7: only step-3 survives, the watch has records to step 8
        if d.is_dir() and d.name not in ("step-3", "best"):
            shutil.rmtree(d)
    r = run_cli("finetune", "tiny", data / "animals", "--out", cut, "--method", "full", "--epochs", "2",
                "--batch-size", "4", "--lr", "1e-3", "--save-steps", "3", "--resume",
                "--watch", data / "shapes", "--watch", data / "animals", "--watch-every", "1")
    assert r.returncode == 0, r.stderr
    assert without_time(records(ref)) == without_time(records(cut))  # no duplicates, no gaps
    assert [x["step"] for x in records(cut)] == list(range(9))
    assert json.loads((cut / "best" / "mfcli.json").read_text())["metrics"]["watch"]["step"] == \
        json.loads((ref / "best" / "mfcli.json").read_text())["metrics"]["watch"]["step"]


def test_two_processes_give_the_same_watch_records(pico, data, one_process_watched, tmp_path):
    one = one_process_watched
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mfcli",
           "finetune", "tiny", str(data / "animals"), "--out", str(tmp_path / "two"), "--method", "full",
           "--batch-size", "2", "--epochs", "1", "--device", "cpu", "--lr", "2e-5",
           "--watch", str(data / "shapes"), "--watch", str(data / "animals"), "--watch-every", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert without_time(records(one)) == without_time(records(tmp_path / "two"))
    assert r.stderr.count("watch step 2 ") == 1  # one live line per evaluation, from the main process


def test_under_fsdp_the_sharded_model_gives_the_same_watch_records(pico, data, one_process_watched, tmp_path):
    """FSDP evaluates on the sharded model: each process answers its slice of every batch and generation
    keeps the processes in step (synced_gpus), so the records equal one process's."""
    one = one_process_watched
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mfcli",
           "finetune", "tiny", str(data / "animals"), "--out", str(tmp_path / "two"), "--method", "full", "--fsdp",
           "--batch-size", "2", "--epochs", "1", "--device", "cpu", "--lr", "2e-5",
           "--watch", str(data / "shapes"), "--watch", str(data / "animals"), "--watch-every", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "FSDP, weights, gradients and optimiser state sharded over 2 processes" in r.stderr
    assert without_time(records(one)) == without_time(records(tmp_path / "two"))
    assert (tmp_path / "two" / "best" / "model.safetensors").is_file()


# ---- bad input: one line, nothing written --------------------------------------------------------

@pytest.mark.parametrize("extra, code, says", [
    (["--watch-every", "0"], 2, "--watch-every must be a positive"),
    (["--watch-best", "hscore"], 2, "unknown --watch-best"),
    (["--watch-floor", "120"], 2, "0 to 100"),
    (["--watch-patience", "0"], 2, "--watch-patience must be"),
    (["--watch-on", "test"], 2, "--watch-on must be val or eval"),
])
def test_bad_watch_options(pico, data, tmp_path, extra, code, says):
    out = tmp_path / "run"
    r = run_cli("finetune", "tiny", data / "animals", "--out", out, "--method", "full",
                "--watch", data / "shapes", "--watch", data / "animals", *extra)
    assert r.returncode == code and says in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_bad_watch_data(pico, data, tmp_path):
    out = tmp_path / "run"
    r = run_cli("finetune", "tiny", data / "animals", "--out", out, "--watch", data / "shapes")
    assert r.returncode == 1 and "animals" in r.stderr and "not among the watched" in r.stderr
    no_eval = tmp_path / "train-only"
    no_eval.mkdir()
    shutil.copy(data / "shapes" / "train.jsonl", no_eval / "train.jsonl")
    r = run_cli("finetune", "tiny", data / "animals", "--out", out, "--watch", no_eval, "--watch", data / "animals")
    assert r.returncode == 1 and "no validation split" in r.stderr and "--watch-on eval" in r.stderr
    r = run_cli("finetune", "tiny", data / "animals", "--out", out, "--watch", no_eval, "--watch", data / "animals",
                "--watch-on", "eval")
    assert r.returncode == 1 and "eval.jsonl does not exist" in r.stderr
    r = run_cli("finetune", "tiny", data / "animals", "--out", out, "--watch-every", "5")
    assert r.returncode == 2 and "need --watch" in r.stderr
    assert not out.exists()


def test_when_the_watch_evaluates():
    from mfcli.train.watch import schedule

    w = Watch.__new__(Watch)  # only its schedule
    for every, want in (("0.5ep", [56, 112, 113, 169, 225, 226]), ("50", [50, 100, 113, 150, 200, 226]),
                        (None, [113, 226])):
        w.steps_per_epoch = 113
        w.every_steps, w.per_epoch = schedule(every, 113)
        got = [s for s in range(1, 227) if w.due(s, s % 113 == 0, s == 226)]
        assert got == want, every


# ---- what the watch chooses on (issue 38) ---------------------------------------------------------

def test_the_watch_samples_the_validation_split_by_default(data):
    from mfcli.io.records import read_eval
    from mfcli.train.watch import draw_sample

    val = {r.id for d in ("shapes", "animals") for r in read_eval(data / d / "val.jsonl")}
    held = {r.id for d in ("shapes", "animals") for r in read_eval(data / d / "eval.jsonl")}
    queries, files = draw_sample((str(data / "shapes"), str(data / "animals")), 100)
    assert {q.record.id for q in queries} == val and not val & held
    assert {f["split"] for f in files} == {"val"}
    queries, files = draw_sample((str(data / "shapes"), str(data / "animals")), 100, "eval")
    assert {q.record.id for q in queries} == held and {f["split"] for f in files} == {"eval"}


@pytest.mark.parametrize("on", ["val", "eval"])
def test_best_records_the_split_it_was_chosen_on(pico, data, tmp_path, on):
    watch = WatchOptions((str(data / "shapes"), str(data / "animals")), on=on)
    run = run_finetune("tiny", [str(data / "animals")], tmp_path / "run", finetune_options(**{**SMALL, "epochs": 1}),
                       progress=False, watch=watch)
    chosen = json.loads((run / "best" / "mfcli.json").read_text())["metrics"]["selected_on"]
    assert [Path(f["path"]).name for f in chosen] == [f"{on}.jsonl"] * 2
    assert {f["split"] for f in chosen} == {on}
    assert "selected_on" not in json.loads((run / "epoch-1" / "mfcli.json").read_text())["metrics"]  # ran its course


def test_a_run_the_watch_stopped_records_what_chose_its_end(pico, data, tmp_path):
    watch = WatchOptions((str(data / "shapes"), str(data / "animals")), every="1", patience=1)
    run = run_finetune("tiny", [str(data / "animals")], tmp_path / "run", finetune_options(**SMALL), progress=False,
                       watch=watch)
    last = run / "step-1"  # the checkpoint the stop left
    assert json.loads((last / "mfcli.json").read_text())["metrics"]["selected_on"][0]["split"] == "val"


# ---- the watch leaves training alone (issue 38) -------------------------------------------------

@pytest.fixture(scope="module")
def dropout_tiny(pico, tmp_path_factory):
    """pico's tiny with dropout in its language model's attention: training then draws random numbers
    every step, so a watch that disturbed the RNG would change the weights."""
    from mfcli.models.load import resolve_model_path

    d = tmp_path_factory.mktemp("dropout") / "tiny-dropout"
    shutil.copytree(resolve_model_path("tiny"), d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["text_config"]["attention_dropout"] = 0.3
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def _weights(run):
    return load_file(str(run / "model.safetensors"))


def test_a_watched_run_trains_the_same_weights_as_an_unwatched_one(dropout_tiny, pico, data, tmp_path):
    opts = finetune_options(**{**SMALL, "epochs": 1})
    plain = run_finetune(str(dropout_tiny), [str(data / "animals")], tmp_path / "plain", opts, progress=False)
    watched = run_finetune(str(dropout_tiny), [str(data / "animals")], tmp_path / "watched", opts, progress=False,
                           watch=WatchOptions((str(data / "shapes"), str(data / "animals")), every="1"))
    a, b = _weights(plain / "epoch-1"), _weights(watched / "epoch-1")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the dropout is live: without it the same run trains other weights
    cfg = json.loads((dropout_tiny / "config.json").read_text())
    nodrop = tmp_path / "nodrop-model"
    shutil.copytree(dropout_tiny, nodrop)
    cfg["text_config"]["attention_dropout"] = 0.0
    (nodrop / "config.json").write_text(json.dumps(cfg))
    c = _weights(run_finetune(str(nodrop), [str(data / "animals")], tmp_path / "nodrop", opts,
                              progress=False) / "epoch-1")
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.slow
def test_under_two_processes_a_watched_run_trains_the_same_weights(dropout_tiny, pico, data, tmp_path):
    def launch(out, *extra):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mfcli",
               "finetune", str(dropout_tiny), str(data / "animals"), "--out", str(out), "--method", "full",
               "--batch-size", "2", "--epochs", "1", "--device", "cpu", "--lr", "1e-3", *extra]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        return _weights(out / "epoch-1")

    a = launch(tmp_path / "plain")
    b = launch(tmp_path / "watched", "--watch", str(data / "shapes"), "--watch", str(data / "animals"),
               "--watch-every", "1")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
