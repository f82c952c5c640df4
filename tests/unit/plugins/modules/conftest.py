"""Run a module's main() with arguments and capture what it exits with."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args


@pytest.fixture(name="run_module")
def fixture_run_module(capsys):
    def run(module, args, check_mode=False):
        if check_mode:
            args = dict(args, _ansible_check_mode=True)
        with patch_module_args(args):
            with pytest.raises(SystemExit) as exited:
                module.main()
        result = json.loads(capsys.readouterr().out)
        result["exit_code"] = exited.value.code
        return result

    return run
