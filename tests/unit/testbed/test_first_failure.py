"""first_failure.py finds a scenario's first failed task in a log as tools/molecule.sh writes it."""

import first_failure


def framed(text):
    """Lines as the log has them: a stamp, molecule's coloured frame, coloured text."""
    return ["14:20:07   \x1b[2m\x1b[31m\u2502\x1b[0m \x1b[31m%s\x1b[0m\n" % line for line in text.splitlines()]


# Cut from CI's log of the site scenario (2026-12-04): a task running site.yml whose own run
# lost the bed; earlier tasks retried and passed.
SUB_RUN_LOG = r"""TASK [Wait for SSH on each L1] ****
FAILED - RETRYING: [localhost]: Wait for SSH on each L1 (299 retries left).
ok: [localhost]

TASK [Run site.yml twice with libvirt domains and image
  files] *****************
changed: [localhost] => (item=first)
[ERROR]: Task failed: Module failed: The command exited with a non-zero
  return code.
Origin: /check/work/main/molecule/site/verify.yml:592:7

590   vars_files: [vars/libvirt_lab.yml]
592     - name: Run site.yml twice with libvirt domains and image files
          ^ column 7

failed: [localhost] (item=second) => {"changed": true, "rc": 4,
  "stderr": "[ERROR]: Task failed: Data could not be sent to remote host
  \"127.0.0.1\". Make sure this host can be reached over ssh:\nOrigin:
  /roles/libvirt_host/tasks/main.yml:13:3\n\n13 - name: Let\n     ^ column 3\n", "stdout": "PLAY"}

PLAY RECAP *********************************************************************
localhost                  : ok=1    changed=1    unreachable=0    failed=1
"""


def test_names_the_task_its_error_and_the_sub_runs_stderr():
    lines = first_failure.clean(framed(SUB_RUN_LOG))
    out = first_failure.summary("site", lines)
    assert out[0] == "=== first failure: scenario site, task [Run site.yml twice with libvirt domains and image files]"
    assert out[1].startswith("    [ERROR]: Task failed: Module failed: The command exited with a non-zero return code. "
                             "Origin: /check/work/main/molecule/site/verify.yml:592:7 failed: [localhost] (item=second)")
    # The quoted source lines between Origin and the column marker are left out.
    assert "590" not in out[1]
    assert out[2] == ('    its stderr: [ERROR]: Task failed: Data could not be sent to remote host "127.0.0.1". '
                      "Make sure this host can be reached over ssh: Origin: /roles/libvirt_host/tasks/main.yml:13:3")
    assert len(out) == 3


def test_a_fatal_line_without_stderr_is_cut_to_width():
    log = "TASK [host_bridge : Check the bridge]\nfatal: [bed]: FAILED! => {\"msg\": \"%s\"}\n" % ("x" * 400)
    out = first_failure.summary("host_bridge_netplan", first_failure.clean(framed(log)))
    assert out[0] == "=== first failure: scenario host_bridge_netplan, task [host_bridge : Check the bridge]"
    assert len(out) == 2
    assert len(out[1]) == 4 + first_failure.WIDTH and out[1].endswith("...")


def test_retries_that_passed_are_no_failure():
    log = "TASK [Wait]\nFAILED - RETRYING: [localhost]: Wait (3 retries left).\nok: [localhost]\n"
    assert first_failure.summary("default", first_failure.clean(framed(log))) == []


def test_main_gives_the_logs_last_line_when_no_task_failed(tmp_path, capsys):
    log = tmp_path / "molecule-nosuch.log"
    # As molecule wrote it for a scenario it could not load (no frame on its own lines).
    log.write_text("16:30:44 \x1b[31mERROR   \x1b[0m 'molecule/nosuch/molecule.yml' glob failed.  Exiting.\n16:30:44 \n\n")
    assert first_failure.main(["first_failure.py", "nosuch", str(log)]) == 0
    assert capsys.readouterr().out == (
        "=== scenario nosuch: no failed task in its log (%s)\n"
        "    16:30:44 ERROR 'molecule/nosuch/molecule.yml' glob failed. Exiting.\n" % log)
