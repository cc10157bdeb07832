"""Liquidation parsers on every venue's documented example: position side and USD notional checked by hand
(including inverse contracts: Binance COIN-M, Gate BTC-settled)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from collectors.errors import PayloadError
from collectors.liquidations.base import (
    COMPLETE,
    SAMPLED,
    UNCONFIRMED,
    ContractSpec,
    event_key,
    rebase_ws,
    ws_base,
)
from collectors.liquidations.binance import COINM, USDM, parse_coinm_specs, parse_force_order
from collectors.liquidations.bybit import FEEDS as BYBIT
from collectors.liquidations.bybit import infer_spec, parse_all_liquidation, parse_instruments, parse_tickers
from collectors.liquidations.gate import (
    REST_FEEDS,
    WS_FEEDS,
    parse_contracts,
    parse_liq_orders,
    parse_public_liquidates,
)
from collectors.liquidations.htx import REST_FEED, WS_FEED, parse_notify, parse_rest
from collectors.liquidations.okx import FEEDS as OKX
from collectors.liquidations.okx import parse_instruments as okx_instruments
from collectors.liquidations.okx import parse_liquidation_orders
from tests.conftest import example, example_raw

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_binance_usdm_force_order() -> None:
    [rec] = parse_force_order(example_raw("binance-usdm", "liquidation_ws_forceOrder.json"), USDM, NOW)
    assert rec.side == "long"  # S=SELL is the liquidation ORDER: a long was closed
    assert rec.symbol == "BTCUSDT" and rec.base_asset == "BTC" and rec.quote_asset == "USDT"
    assert rec.qty_base == pytest.approx(0.014)
    assert rec.notional_usd == pytest.approx(0.014 * 9910)  # 138.74: base x average fill
    assert rec.price == 9910 and rec.price_kind == "average_fill" and not rec.inverse
    assert rec.ts == datetime(2019, 9, 9, 7, 34, 20, 893000, tzinfo=UTC)
    assert rec.coverage == SAMPLED and rec.lower_bound
    assert json.loads(rec.raw)["o"]["s"] == "BTCUSDT"


def test_binance_coinm_inverse_notional() -> None:
    message = example_raw("binance-coinm", "liquidation_ws_forceOrder_arr.json")
    [rec] = parse_force_order(message, COINM, NOW)
    assert rec.side == "long"
    assert rec.inverse and rec.quote_asset == "USD" and rec.base_asset == "BTC"
    assert rec.qty_contracts == 1 and rec.contract_size == 100  # BTC COIN-M contract = 100 USD
    assert rec.notional_usd == pytest.approx(100.0)  # NOT 1 x 9496.5 (ccxt's inverse bug)
    assert rec.qty_base == pytest.approx(100 / 9496.5)  # 0.01053 BTC
    assert rec.price == 9496.5
    # a contract size from /dapi/v1/exchangeInfo wins over the published convention
    specs = parse_coinm_specs({"symbols": [{"symbol": "BTCUSD_200925", "pair": "BTCUSD", "baseAsset": "BTC",
                                            "contractSize": 50}]})
    [rec50] = parse_force_order(message, COINM, NOW, specs)
    assert rec50.notional_usd == pytest.approx(50.0)
    alt = copy.deepcopy(message)
    alt["o"].update({"s": "ETHUSD_PERP", "ps": "ETHUSD", "S": "BUY", "z": "3", "ap": "2000"})
    [eth] = parse_force_order(alt, COINM, NOW)
    assert eth.side == "short" and eth.notional_usd == pytest.approx(30.0) and eth.base_asset == "ETH"


def test_bybit_all_liquidation_side_is_position_side() -> None:
    [rec] = parse_all_liquidation(example_raw("bybit", "liquidation_ws_allLiquidation.json"), BYBIT["linear"], NOW)
    assert rec.side == "short"  # S=Sell is the POSITION side on Bybit
    assert rec.symbol == "ROSEUSDT" and rec.base_asset == "ROSE" and rec.quote_asset == "USDT"
    assert rec.qty_base == 20000 and rec.notional_usd == pytest.approx(20000 * 0.04499)  # 899.8
    assert rec.price_kind == "bankruptcy" and rec.coverage == COMPLETE and not rec.lower_bound
    assert rec.ts == datetime.fromtimestamp(1739502302.929, tz=UTC)


def test_bybit_inverse_counts_usd_contracts() -> None:
    message = example_raw("bybit", "liquidation_ws_allLiquidation.json")
    message["data"][0].update({"s": "BTCUSD", "S": "Buy", "v": "25000", "p": "62500"})
    [rec] = parse_all_liquidation(message, BYBIT["inverse"], NOW)
    assert rec.side == "long" and rec.inverse
    assert rec.notional_usd == 25000 and rec.qty_base == pytest.approx(0.4)
    assert infer_spec("BTCUSDH25", "inverse").base == "BTC"
    assert infer_spec("BTCPERP", "linear").quote == "USDC"
    specs, cursor = parse_instruments({"result": {"list": [{"symbol": "BTCUSDT", "baseCoin": "BTC",
                                                            "quoteCoin": "USDT", "status": "Trading"}],
                                                  "nextPageCursor": "abc"}}, "linear")
    assert specs["BTCUSDT"].base == "BTC" and cursor == "abc"
    listed = parse_tickers({"result": {"category": "inverse", "list": [{"symbol": "ETHUSD"}]}}, "inverse")
    assert listed["ETHUSD"].inverse and listed["ETHUSD"].base == "ETH"


def test_okx_every_detail_with_contract_value() -> None:
    message = example_raw("okx", "liquidation_ws_liquidation-orders.json")
    spec = {"IOST-USDT-SWAP": ContractSpec("IOST-USDT-SWAP", "IOST", "USDT", Decimal(1000), False)}
    records, missing = parse_liquidation_orders(message, OKX["SWAP"], NOW, spec)
    [rec] = records
    assert not missing
    assert rec.side == "short"  # posSide short (side buy closes it)
    assert rec.qty_contracts == 13 and rec.qty_base == 13000  # ctVal 1000 IOST per contract
    assert rec.notional_usd == pytest.approx(13000 * 0.007831)  # 101.803
    # several details in one message: all of them (ccxt reads only details[0])
    multi = copy.deepcopy(message)
    extra = dict(multi["data"][0]["details"][0], posSide="long", side="sell", sz="2", ts="1692266434011")
    net = dict(multi["data"][0]["details"][0], posSide="net", side="sell", sz="1", ts="1692266434012")
    multi["data"][0]["details"] += [extra, net]
    records, _ = parse_liquidation_orders(multi, OKX["SWAP"], NOW, spec)
    assert [r.side for r in records] == ["short", "long", "long"]  # net mode: sell closes a long
    assert sum(r.qty_base or 0 for r in records) == 16000
    assert len({r.event_key for r in records}) == 3


def test_okx_without_spec_keeps_contracts_and_no_usd() -> None:
    records, missing = parse_liquidation_orders(example_raw("okx", "liquidation_ws_liquidation-orders.json"),
                                                OKX["SWAP"], NOW, {})
    assert missing == {"IOST-USDT-SWAP"}
    assert records[0].notional_usd is None and records[0].notional_source == "no_spec"
    specs = okx_instruments({"code": "0", "data": [
        {"instId": "BTC-USD-SWAP", "ctVal": "100", "ctValCcy": "USD", "ctType": "inverse"},
        {"instId": "BTC-USDT-SWAP", "ctVal": "0.01", "ctValCcy": "BTC", "ctType": "linear"}]})
    assert specs["BTC-USD-SWAP"].inverse and specs["BTC-USD-SWAP"].contract_size == 100
    assert not specs["BTC-USDT-SWAP"].inverse and specs["BTC-USDT-SWAP"].contract_size == Decimal("0.01")


def test_gate_ws_size_sign_and_inverse_contract() -> None:
    message = example("gate", "liquidation_ws_futures.public_liquidates.json")
    specs = parse_contracts([{"name": "BTC_USD", "type": "inverse", "quanto_multiplier": "0"}])
    [rec] = parse_public_liquidates(message, WS_FEEDS["btc"], NOW, specs)
    assert rec.side == "short"  # size -124: a short position
    assert rec.inverse and rec.qty_contracts == 124
    assert rec.notional_usd == 124  # BTC-settled inverse: 1 USD per contract
    assert rec.qty_base == pytest.approx(124 / 215.1)
    assert rec.ts == datetime.fromtimestamp(1541486601.123, tz=UTC)
    assert rec.coverage == SAMPLED


def test_gate_rest_liq_orders_seconds_and_quanto() -> None:
    payload = example("gate", "liquidations_rest_futures_settle_liq_orders.json")
    specs = parse_contracts([{"name": "BTC_USDT", "type": "direct", "quanto_multiplier": "0.0001"}])
    [rec] = parse_liq_orders(payload, REST_FEEDS["usdt"], NOW, specs)
    assert rec.side == "long"  # position size +600
    assert rec.ts == datetime(2019, 1, 28, 5, 55, 51, tzinfo=UTC)  # `time` is SECONDS
    assert rec.qty_base == pytest.approx(0.06)  # 600 contracts x 0.0001 BTC
    assert rec.notional_usd == pytest.approx(0.06 * 3424)  # 205.44 at the fill price
    assert rec.price == 3424 and rec.price_kind == "fill" and rec.coverage == UNCONFIRMED


def test_htx_ws_notify() -> None:
    [rec] = parse_notify(example("htx", "liquidation_ws_public.contract_code.liquidation_orders.json"), WS_FEED, NOW)
    assert rec.side == "long"  # direction sell = the order side: a long was closed
    assert rec.symbol == "O3-USDT" and rec.base_asset == "O3" and rec.quote_asset == "USDT"
    assert rec.qty_base == 432 and rec.qty_contracts == 432
    assert rec.notional_usd == pytest.approx(339.4656)  # trade_turnover = 432 x 0.7858
    assert rec.price == pytest.approx(0.7858)


def test_htx_rest_v3() -> None:
    [rec] = parse_rest(example("htx", "liquidations_rest_linear-swap-api_v3_swap_liquidation_orders.json"),
                       REST_FEED, NOW)
    assert rec.side == "long" and rec.base_asset == "BTC" and rec.quote_asset == "USDT"
    assert rec.qty_base == pytest.approx(0.479) and rec.contract_size == pytest.approx(0.001)
    assert rec.notional_usd == pytest.approx(24640.5743)  # 0.479 x 51441.7
    assert rec.source == "rest"


def test_event_keys_normalise_numbers_and_detect_replays() -> None:
    assert event_key("BTC-USDT", 1, Decimal("479.000000000000000000")) == event_key("BTC-USDT", 1, 479)
    message = example_raw("bybit", "liquidation_ws_allLiquidation.json")
    first = parse_all_liquidation(message, BYBIT["linear"], NOW)[0]
    again = parse_all_liquidation(copy.deepcopy(message), BYBIT["linear"], datetime.now(UTC))[0]
    assert first.event_key == again.event_key


@pytest.mark.parametrize(("mutate", "parser"), [
    (lambda m: m["o"].pop("S"), lambda m: parse_force_order(m, USDM, NOW)),
    (lambda m: m["o"].update(S="HOLD"), lambda m: parse_force_order(m, USDM, NOW)),
    (lambda m: m["o"].update(z="n/a", q="n/a"), lambda m: parse_force_order(m, USDM, NOW)),
])
def test_bad_shapes_raise_payload_error(mutate, parser) -> None:
    message = example_raw("binance-usdm", "liquidation_ws_forceOrder.json")
    mutate(message)
    with pytest.raises(PayloadError):
        parser(message)


def test_ws_urls_are_rebased_to_the_simulator() -> None:
    assert ws_base("http://127.0.0.1:8800/bybit") == "ws://127.0.0.1:8800/bybit"
    assert ws_base("https://example.test/okx/") == "wss://example.test/okx"
    assert rebase_ws("wss://stream.{hostname}/v5/public/linear", "ws://h:1/bybit") == "ws://h:1/bybit/v5/public/linear"
