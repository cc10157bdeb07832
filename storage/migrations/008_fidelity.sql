-- Fidelity (issue 17): venue values at full precision, where a row's timestamp came from, why an
-- open-interest row has no USD value, and Deribit's second (trailing) funding figure.
--
-- Venues publish up to 10 decimals (Hyperliquid accountValue) and minimum units down to 1e-18 (wei-like
-- units): balances, USD values and flows are kept as DECIMAL(38, 18) (20 integer digits); round for display.
ALTER TABLE fund_balances ALTER balance SET DATA TYPE DECIMAL(38, 18);
ALTER TABLE fund_balances ALTER usd_value SET DATA TYPE DECIMAL(38, 18);
ALTER TABLE fund_flows ALTER amount SET DATA TYPE DECIMAL(38, 18);
ALTER TABLE fund_flows ALTER balance_after SET DATA TYPE DECIMAL(38, 18);

-- venue = the venue's own timestamp; http_date = the response's Date header; fetch = Backstop's fetch
-- time (the venue omitted it or never publishes one).
ALTER TABLE fund_balances ADD COLUMN ts_source VARCHAR DEFAULT 'venue';
ALTER TABLE open_interest ADD COLUMN ts_source VARCHAR DEFAULT 'venue';
ALTER TABLE funding_rates ADD COLUMN ts_source VARCHAR DEFAULT 'venue';

-- How oi_usd was obtained for a contract not quoted in USD/USDT/USDC (e.g. "EUR->USD from XBTUSD/XBTEUR
-- marks"), or why it is empty ("quote JPY: no USD rate in the response"). NULL for USD-quoted contracts.
ALTER TABLE open_interest ADD COLUMN oi_usd_note VARCHAR;

-- Deribit publishes two funding figures that can have opposite signs: funding_rate holds the current one
-- (current_funding), funding_8h the trailing 8 h one. NULL for every other venue.
ALTER TABLE funding_rates ADD COLUMN funding_8h DOUBLE;
ALTER TABLE funding_rates ADD COLUMN funding_8h_raw VARCHAR;
