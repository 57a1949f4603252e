"""Python client library and the ``sportsbook`` command line."""
