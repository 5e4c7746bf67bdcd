"""Test doubles and tools for tests and benchmarks: the OpenAI-compatible emulator, the in-memory ledger and the
pure in-memory engine executor.

The runtime never imports this package (the ``ecoalign emulator`` command imports the emulator inside its command
function only); tests and ``benchmarks/`` do.
"""
