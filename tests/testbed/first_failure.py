"""Say in a few lines where a molecule scenario's log first failed.

`make test` prints its timing table last, and CI keeps only the last lines of a run; a
failed scenario's 150-line log tail and serial tails come before the table, so its cause
was out of sight. tools/molecule.sh writes this summary to a file and tools/test.sh prints it
after the table: the scenario, the task that failed, its first error line and, for a task
that ran a playbook of its own (most of verify), the start of that run's stderr.

The log is what tools/molecule.sh writes: a time stamp, molecule's box character and the
colour codes around every line, ansible's output wrapped at the terminal's width.

Usage: first_failure.py SCENARIO LOG
"""

import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# "14:20:07   │ text": the stamp of tools/molecule.sh, then molecule's frame.
FRAME = re.compile(r"^(?:\d\d:\d\d:\d\d)?\s*\u2502 ?")
STAMP = re.compile(r"^\d\d:\d\d:\d\d\s*")
TASK = re.compile(r"^\s*TASK \[(?P<name>.*)")
ERROR = re.compile(r"^\s*(?:fatal: \[|failed: \[|\[ERROR\]: )")
# Where the next task or play starts, or the recap: the end of an error's text.
BOUNDARY = re.compile(r"^\s*(?:TASK \[|PLAY \[|PLAY RECAP|RUNNING HANDLER \[)")
STDERR = re.compile(r'"stderr": "(?P<text>(?:[^"\\]|\\.)*)')
# ansible's "Origin: FILE:LINE:COL" is followed by the lines it quotes, up to "^ column N".
ORIGIN = re.compile(r"(Origin: \S+) .*?\^ column \d+")
WIDTH = 300


def clean(raw_lines):
    """The log's lines without stamps, frames and colours."""
    return [FRAME.sub("", ANSI.sub("", line.rstrip("\n"))) for line in raw_lines]


def _task_name(lines, start):
    """The task name that starts on lines[start], joined over its wrapped lines."""
    text = TASK.match(lines[start]).group("name")
    for line in lines[start + 1:start + 4]:
        if "]" in text:
            break
        text += " " + line.strip()
    return re.sub(r"\]\s*\**\s*$", "", text.split("] *")[0]).strip()


def _cut(text):
    text = ORIGIN.sub(r"\1", re.sub(r"\s+", " ", text)).strip()
    return text if len(text) <= WIDTH else text[:WIDTH - 3] + "..."


def summary(scenario, lines):
    """The summary's lines: nothing when the log shows no failed task."""
    task = None
    for index, line in enumerate(lines):
        if TASK.match(line):
            task = index
        elif ERROR.match(line):
            end = index + 1
            while end < len(lines) and not BOUNDARY.match(lines[end]):
                end += 1
            block = " ".join(part.strip() for part in lines[index:end])
            out = ["=== first failure: scenario %s, task [%s]" % (
                scenario, _task_name(lines, task) if task is not None else "?")]
            out.append("    " + _cut(block))
            stderr = STDERR.search(block)
            if stderr and stderr.group("text").strip():
                text = stderr.group("text").encode().decode("unicode_escape", "replace")
                out.append("    its stderr: " + _cut(text))
            return out
    return []


def main(argv):
    scenario, log = argv[1], argv[2]
    with open(log, encoding="utf-8", errors="replace") as handle:
        lines = clean(handle)
    out = summary(scenario, lines)
    if not out:
        # molecule itself failed (a scenario it cannot load, a driver error): its last word.
        last = [line.strip() for line in lines if STAMP.sub("", line).strip()][-1:]
        out = ["=== scenario %s: no failed task in its log (%s)" % (scenario, log)] + ["    " + _cut(line) for line in last]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
