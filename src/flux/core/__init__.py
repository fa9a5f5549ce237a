"""Core client machinery: handle, connection, reactor, watchers."""
