"""The layering holds at run time too: the dashboard's process, every page rendered, carries no adapters,
ccxt or composition root (issue #11), and the plain-data venue catalog it reads matches the collector registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from backstop.catalog import generated_catalog, venue_facts
from records.venue_catalog import catalog_data, catalog_facts, venue_keys

ROOT = Path(__file__).resolve().parents[1]

RENDER_AND_LIST_MODULES = """
import json, sys
from pathlib import Path
from streamlit.testing.v1 import AppTest
app = AppTest.from_file(str(Path("dashboard/app.py").resolve()), default_timeout=120).run()
exceptions = [str(e.value) for e in app.exception]
rendered = []
for page in sorted(Path("dashboard/views").glob("*.py")):
    try:
        app.switch_page(f"views/{page.name}")
    except ValueError:  # not a page of this app on an empty database (positions: shown when there are some)
        continue
    app.run()
    rendered.append(page.name)
    exceptions += [f"{page.name}: {e.value}" for e in app.exception]
print(json.dumps({"exceptions": exceptions, "rendered": rendered,
                  "modules": sorted(m for m in sys.modules
                                    if m.split(".")[0] in {"ccxt", "collectors", "backstop", "simulator"})}))
"""


def test_the_dashboard_process_imports_no_adapters_ccxt_or_composition_root(tmp_path: Path) -> None:
    env = {**os.environ, "BACKSTOP_DB": str(tmp_path / "empty.duckdb"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", RENDER_AND_LIST_MODULES], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["exceptions"] == []
    assert {"overview.py", "funds.py", "coverage.py", "divergence.py", "health.py"} <= set(report["rendered"])
    assert report["modules"] == []


def test_the_venue_catalog_matches_the_collector_registry() -> None:
    """``records/venue_catalog.json`` is generated (``python -m backstop.capabilities --write-readme``)."""
    assert catalog_data() == generated_catalog()
    from collectors.registry import venue_keys as registry_keys

    assert venue_keys() == registry_keys()
    # the dashboard's facts (from the catalog) are the collector's and the alert engine's (from the adapters)
    assert catalog_facts() == venue_facts(registry_keys())
