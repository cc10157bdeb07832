"""``backstop collect --once`` and ``backstop backfill`` (the CLI, in process) against the simulator fill every
dataset the second-wave venues add: Crypto.com, Orderly and Paradex funds, open interest, funding and prices,
Crypto.com's fund history, and the backstop positions of Hyperliquid's HLP Liquidator and Orderly's fund."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from backstop.cli import app
from collectors.registry import venue_keys
from storage.queries import query_df

pytestmark = pytest.mark.e2e

NEW_FUND_VENUES = ["cryptocom", "orderly", "paradex"]
INVENTORY_VENUES = ["hyperliquid", "orderly"]


def config(tmp_path: Path, sim: Any, venues: list[str]) -> Path:
    lines = [f"[venues.{key}]\nenabled = false\n" for key in venue_keys() if key not in venues]
    lines += [f"[venues.{key}]\nbase_url = '{sim.base_url(key)}'\n" for key in venues]
    path = tmp_path / "backstop.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_collect_once_and_backfill_fill_every_new_dataset(sim_factory: Any, tmp_path: Path) -> None:
    venues = sorted({*NEW_FUND_VENUES, *INVENTORY_VENUES})
    sim = sim_factory(venues)
    cfg, db = config(tmp_path, sim, venues), tmp_path / "wave.duckdb"
    runner = CliRunner()

    once = runner.invoke(app, ["--config", str(cfg), "--db", str(db), "collect", "--once"])
    assert once.exit_code == 0, once.output
    for table in ("fund_balances", "open_interest", "funding_rates", "prices"):
        have = set(query_df(db, f"SELECT DISTINCT venue FROM {table}")["venue"])  # noqa: S608
        assert set(NEW_FUND_VENUES) <= have, (table, have)
    holders = query_df(db, "SELECT DISTINCT venue, holder FROM backstop_positions ORDER BY venue")
    assert holders.values.tolist() == [["hyperliquid", "HLP Liquidator"], ["orderly", "insurance fund"]]

    history = runner.invoke(app, ["--config", str(cfg), "--db", str(db), "backfill", "--venue", "cryptocom",
                                  "--since", "30d"])
    assert history.exit_code == 0, history.output
    span = query_df(db, "SELECT count(*) AS n, max(ts) - min(ts) AS span FROM fund_balances WHERE venue = 'cryptocom'")
    assert span["span"].iloc[0].days >= 29 and span["n"].iloc[0] > 24 * 14

    out = tmp_path / "positions.csv"
    export = runner.invoke(app, ["--db", str(db), "export", "backstop-positions", "--out", str(out)])
    assert export.exit_code == 0, export.output
    assert out.read_text(encoding="utf-8").splitlines()[0].split(",")[:4] == ["venue", "holder", "contract", "ts"]
