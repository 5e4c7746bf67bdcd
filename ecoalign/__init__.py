"""EcoAlign: inference-time alignment of vision-language models as an economically rational search."""

__version__ = "0.1.0"
