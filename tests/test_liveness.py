"""Process references: alive, gone, or on another host (unknown)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

from codeclab.liveness import ProcessRef


def test_this_process_is_alive_and_round_trips() -> None:
    me = ProcessRef.current()
    assert me.alive() is True
    assert ProcessRef.from_dict(me.to_dict()) == me


def test_an_ended_process_is_not_alive_nor_is_its_pid_given_to_another() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    ref = replace(ProcessRef.current(), pid=child.pid)
    child.wait()
    assert ref.alive() is False
    me = ProcessRef.current()
    assert me.start is not None
    assert replace(me, start=me.start + 1).alive() is False  # same pid, another start


def test_a_process_of_another_host_is_unknown_and_malformed_refs_are_none() -> None:
    assert replace(ProcessRef.current(), host="elsewhere.example").alive() is None
    assert ProcessRef.from_dict({}) is None
    assert ProcessRef.from_dict({"host": "h", "pid": "x"}) is None
