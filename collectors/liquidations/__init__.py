"""Liquidation feeds of every venue (streams and REST history), normalised to one record.

``base`` holds the record and the helpers parsers share; ``runner`` the feed interface and the runner
(reconnect, backoff, dedupe, gap rows); one module per venue holds its pure parsers and its feed;
``integration`` wires them into the collector process.
"""
