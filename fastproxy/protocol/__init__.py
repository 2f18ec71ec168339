"""The sans-I/O protocol core: one ``Session`` per client connection (PROTOCOL.md §3-§10).

Nothing in this package imports asyncio, picows, prometheus_client or time: events go in,
actions come out, and every rule is unit-testable without sockets.
"""
