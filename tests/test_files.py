"""One atomic writer: a write that fails leaves the old file whole and no temporary file; the
config, the exported policies and a sweep's JSON files are written through it."""

import ast
import json
from pathlib import Path

import pytest

import ddpgx
from ddpgx.files import write_atomically, write_json


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "deep" / "value.json"
    write_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}

    def dies(f):
        f.write(b'{"a": 2')
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, dies)
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in path.parent.iterdir()] == ["value.json"]
    write_atomically(path, b"bytes")
    assert path.read_bytes() == b"bytes"


def test_config_save_writes_through_the_helper(tmp_path, monkeypatch):
    from ddpgx import config

    def dies(path, value):
        raise OSError(28, "No space left on device")

    ddpgx.Config().save(tmp_path / "config.json")
    monkeypatch.setattr(config, "write_json", dies)
    with pytest.raises(OSError):
        ddpgx.Config(tau=0.01).save(tmp_path / "config.json")
    assert ddpgx.Config.load(tmp_path / "config.json") == ddpgx.Config()


def test_no_module_renames_files_but_the_helper_and_the_writers_of_directories_and_logs():
    """os.replace / Path.replace (the step that makes a write atomic) appear only in files.py, in
    checkpoint.py (a checkpoint is a directory renamed as a whole) and in logging.py (a CSV cut back
    on resume)."""
    package = Path(ddpgx.__file__).parent
    renaming = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "replace" and isinstance(node.ctx, ast.Load):
                parent_text = ast.unparse(node.value)
                if parent_text == "os" or parent_text.endswith("tmp"):
                    renaming.add(path.name)
    assert renaming == {"files.py", "checkpoint.py", "logging.py"}
