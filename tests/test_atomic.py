"""Atomic writes: the target holds the old content or the new, and no temporary file is left."""

import json

import pytest

from spikelab.atomic import atomic_path, write_json


def test_write_json_creates_folders_and_round_trips(tmp_path):
    target = tmp_path / "a" / "b.json"
    write_json(target, {"acc": 95.07, "matrix": [[1, 2]]})
    assert json.loads(target.read_text()) == {"acc": 95.07, "matrix": [[1, 2]]}
    assert [p.name for p in target.parent.iterdir()] == ["b.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
