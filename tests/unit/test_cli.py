"""The ovsnet command line: exit codes, messages on stderr, no tracebacks."""

from __future__ import annotations

import glob
import json
import subprocess
import sys

import pytest

from ovsnet.cli import main

EXAMPLES = sorted(glob.glob("topologies/*.yaml"))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ovsnet", *args], capture_output=True,
                          text=True, timeout=120)


def test_examples_validate():
    proc = run("validate", *EXAMPLES)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(": ok (") == len(EXAMPLES) >= 3


@pytest.mark.parametrize("text,needle", [
    ("name: [unclosed\n", "t.yaml:2:1: YAML syntax error"),
    ("hosts: {}\n", "name"),
    ("name: x\nhosts: {h: {bridges: {b: {ports: {p: {tag: 5000}}}}}}\n", "4095"),
    ("name: x\nhosts: {h: {bogus: 1}}\n", "bogus"),
])
def test_bad_input_exits_2_with_file_line_column(tmp_path, text, needle):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    for command in (["validate"], ["up", "--ovsdb", "unix:/nonexistent"], ["show"]):
        proc = run(*command, str(path))
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert needle in proc.stderr
        assert "t.yaml:" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_missing_file_is_bad_input(tmp_path):
    proc = run("validate", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2
    assert "nope.yaml" in proc.stderr


def test_unknown_host_and_backend_are_bad_input():
    path = EXAMPLES[0]
    assert run("apply", path, "--host", "nohost", "--db", "unix:/x").returncode == 2
    proc = run("up", path, "--ovsdb", "carrier-pigeon")
    assert proc.returncode == 2 and "embedded, real, unix:PATH" in proc.stderr
    proc = run("up", path, "--ovsdb", "embedded")   # the pure-Python server: no binary needed
    assert proc.returncode == 0 and "Bridge" in proc.stdout, proc.stderr


def test_unreachable_database_fails_with_1(tmp_path):
    proc = run("apply", EXAMPLES[0], "--host", _first_host(EXAMPLES[0]),
               "--db", f"unix:{tmp_path}/none.sock")
    assert proc.returncode == 1
    assert "cannot connect" in proc.stderr and "Traceback" not in proc.stderr
    debug = run("--debug", "apply", EXAMPLES[0], "--host", _first_host(EXAMPLES[0]),
                "--db", f"unix:{tmp_path}/none.sock")
    assert "Traceback" in debug.stderr


def _first_host(path: str) -> str:
    from ovsnet.topology import load_topology

    return next(iter(load_topology(path).hosts))


def test_schema_command_prints_the_published_schema():
    from ovsnet.topology import SCHEMA

    proc = run("schema")
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == SCHEMA


def test_main_returns_exit_codes_in_process(capsys):
    assert main(["validate", EXAMPLES[0]]) == 0
    assert main(["no-such-command"]) == 2
