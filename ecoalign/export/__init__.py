"""Training data from stored thought graphs: TRL's DPO, SFT and KTO datasets (docs/audit.md)."""
