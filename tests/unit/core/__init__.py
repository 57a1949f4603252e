"""Unit tests of the domain core, one module per ``sportsbook_core`` module."""
