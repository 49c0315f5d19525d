"""Market data: readers, cleaning, the local store, exchange loading (ccxt) and statistics.

See docs/marketsim/data.md.
"""
