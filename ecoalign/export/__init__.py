"""Training data from stored thought graphs: TRL's DPO / SFT / KTO datasets as JSONL or Parquet (docs/audit-export-viewer.md)."""
