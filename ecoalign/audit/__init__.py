"""Audits of stored and imported reasoning traces: the trace resource, import parsing, scoring, reports, runs."""
