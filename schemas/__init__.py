"""Wire types: decoding requests into frozen values and encoding frames (PROTOCOL.md)."""
