"""The sportsbook's domain core: pure values and rules, no I/O, no event loop."""
