"""Data flows one way: the dashboard reads records and objects, it never imports the pipeline
(it starts `codeclab run` and `codeclab publish` as separate processes instead)."""

from __future__ import annotations

import json
import subprocess
import sys

UPSTREAM = ("codeclab.pipeline", "codeclab.designers", "codeclab.executors", "codeclab.baselines")


def test_the_dashboard_imports_nothing_upstream_of_storage() -> None:
    probe = (
        "import json, sys; import codeclab.web.app, codeclab.web.command; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({UPSTREAM!r}))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout) == []
