"""Evaluators: the scanner (text + OCR'd images), the offline safety scorer, the LLM judge, combinations."""
