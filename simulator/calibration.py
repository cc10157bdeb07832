"""How the simulated venues' fund sizes are calibrated against the real ones, with the source of every
figure. Data only: venue modules size their pools to these orders of magnitude, and tests/test_fidelity.py
checks a calm simulated collection against the table."""

from __future__ import annotations

# Every simulated venue's fund ÷ open interest (as Backstop computes it after one calm ``collect --once``
# against the simulator: tests/test_fidelity.py keeps it between COVERAGE_SANE_PCT and out of coverage_low)
# is set to the order of magnitude of the venue's real published fund. venue -> (simulated coverage %, the
# real figure it is set against, source). Real OI figures are not in the reference material: the OI side is
# the simulator's own (UNCONFIRMED against the venues), so only the order of magnitude is claimed.
FUND_TO_OI_CALIBRATION: dict[str, tuple[float, str, str]] = {
    "binance": (11.0, "fund ~$1.23 B before 10 Oct 2025; example pools 314 M / 794 M USDT",
                "shared/incidents.md #10 (followin.io/feed/22111099); exchange-api examples/binance-usdm"),
    "bitmex": (147.0, "XBt fund ~33,500-36,500 BTC (2020); BitMEX's fund has long exceeded its OI",
               "shared/incidents.md #1, #4 (cointelegraph; BitMEX blog 2020-03-23)"),
    "hyperliquid": (10.4, "HLP ~$451 M (Mar 2025)", "shared/incidents.md #8 (crypto.report)"),
    "dydx": (2.1, "v3 fund ~$22.5 M before the Nov 2023 YFI attack (v4 size UNCONFIRMED)",
             "shared/incidents.md #7 (runfi.com)"),
    "krakenfutures": (26.8, "liquidity pool 95,402,118.37 USD", "exchange-api README (Kraken row, 3rd-party client)"),
    "mexc": (4.9, "insurance fund ~$559 M USDT (Jul-Aug 2025 security report); was 0.02 % here (issue 15)",
             "ainvest.com/news/mexc-559m-insurance-fund-shields-traders-rising-crypto-fraud-waves-2509"),
    "bybit": (1.3, "no published total; example pools up to 902,178 USDT per pool",
              "exchange-api examples/bybit/insurance_rest_v5_market_insurance.json"),
    "okx": (22.6, "no published total in the references", "exchange-api README (OKX row)"),
    "gate": (1.2, "no published total in the references (example row b = 83.0031)", "exchange-api examples/gate"),
    "htx": (6.4, "no published total in the references (example 16,174.62 USDT per contract)",
            "exchange-api examples/htx"),
    "bitfinex": (6.8, "one shared USDt fund 37,671,589.79 with the pairs' OI from the same captured rows",
                 "ccxt's captured /v2/status/deriv rows (tests/fixtures/exchange-api/bitfinex, SOURCES.md)"),
    "bitget": (1.2, "no published total (doc example pool 95,815.68 USDT reads as a sample); sized like Bybit/Gate",
               "ASSUMPTION (simulator/venues/bitget.py)"),
    "cryptocom": (2.5, "derivatives insurance fund 'USD 5 million'", "Crypto.com blog (simulator/venues/cryptocom.py)"),
    "orderly": (60.5, "fund 10.0 M USDC (docs example) against ~110 BTC OI from ccxt's captured rows",
                "Orderly docs /v1/public/insurancefund example; ccxt captured futures rows"),
    "paradex": (4.9, "ASSUMPTION 1.2 M USDC (only the docs' testnet example, 136,285 USDC, exists)",
                "Paradex docs /v1/insurance example (testnet)"),
}
COVERAGE_SANE_PCT = (0.5, 200.0)  # a calm demo venue outside this is a calibration bug (0.5 = coverage_low floor)
