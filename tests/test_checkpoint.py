import json

import pytest

from mfcli.errors import MfcliError
from mfcli.io.checkpoint import Manifest, read_manifest, sha256_file, staged_dir, write_checkpoint


def _save(d):
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"x")


def test_manifest_records_provenance(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"a": 1}\n')
    m = Manifest("finetune", options={"lr": 1e-4}, parents=["tiny"], seed=7)
    m.add_data(data)
    out = write_checkpoint(tmp_path / "ck", _save, m)
    got = read_manifest(out)
    assert got.command == "finetune" and got.seed == 7 and got.parents == ["tiny"] and got.options == {"lr": 1e-4}
    assert got.data == [{"path": str(data.resolve()), "sha256": sha256_file(data)}]
    assert got.mfcli_version and got.created and got.schema == "mfcli.manifest/1"
    raw = json.loads((out / "mfcli.json").read_text())
    assert raw["schema"] == "mfcli.manifest/1" and raw["command"] == "finetune"  # the file as other tools read it
    (out / "mfcli.json").write_text('{"schema": "mfcli.manifest/9", "command": "x"}')
    with pytest.raises(MfcliError, match="not a mfcli.manifest/1 manifest"):
        read_manifest(out)


def test_interrupted_write_leaves_nothing(tmp_path):
    def boom(d):
        _save(d)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(tmp_path / "ck", boom, Manifest("x"))
    assert list(tmp_path.iterdir()) == []  # no output dir, no leftover temporary dir


def test_refuses_existing_and_requires_safetensors(tmp_path):
    (tmp_path / "ck").mkdir()
    with pytest.raises(MfcliError, match="already exists"):
        write_checkpoint(tmp_path / "ck", _save, Manifest("x"))
    with pytest.raises(MfcliError, match="no safetensors"):
        write_checkpoint(tmp_path / "ck2", lambda d: (d / "config.json").write_text("{}"), Manifest("x"))
    assert not (tmp_path / "ck2").exists()


def test_staged_dir_overwrite_replaces(tmp_path):
    with staged_dir(tmp_path / "d") as t:
        (t / "a").write_text("1")
    with staged_dir(tmp_path / "d", overwrite=True) as t:
        (t / "b").write_text("2")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["b"]
    assert json.dumps(sorted(p.name for p in tmp_path.iterdir())) == '["d"]'
