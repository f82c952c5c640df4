"""Every module runs as a script, as Ansible runs it: it must parse its arguments and exit itself."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

MODULES = sorted(pathlib.Path(__file__).resolve().parents[4].joinpath("plugins", "modules").glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[path.stem for path in MODULES])
def test_module_runs_as_a_script_and_exits_with_json(path, tmp_path):
    args = tmp_path / "args.json"
    # An unknown option: every module refuses it (or a missing required one) through its
    # argument spec, changing nothing; what matters is that it answers with JSON and exits.
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"nestlab_no_such_option": 1, "_ansible_check_mode": True}}),
                    encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    run = subprocess.run([sys.executable, str(path), str(args)], capture_output=True, text=True, env=env,
                         check=False, timeout=60)
    result = json.loads(run.stdout)
    assert run.returncode == 1 and result["failed"], run.stdout + run.stderr
    assert "nestlab_no_such_option" in result["msg"] or "required" in result["msg"]
