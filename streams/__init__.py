"""Feed adapters: turn exchange streams and recordings into the core's normalised changes.

Each adapter is a plain synchronous state machine (no event loop) that folds a
feed's messages into :class:`sportsbook_core.changes.MarketChange` and
:class:`sportsbook_core.changes.FeedStatus` values; ``streams.replay`` drives
recordings through them, flat out or paced, for demos, tests and benchmarks.
"""
