"""The command line's model, judge and database options, shared by ``ecoalign align`` and ``ecoalign eval``."""

from __future__ import annotations

import argparse
import os
from typing import Any


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-url",
        default=os.environ.get("ECOALIGN_MODEL_URL"),
        help="OpenAI base URL of the chat model, e.g. http://localhost:11434/v1 "
        "(default: $ECOALIGN_MODEL_URL, else the offline llama.cpp Gemma 3 270M)",
    )
    parser.add_argument("--model", default=os.environ.get("ECOALIGN_MODEL"), help="model name at --model-url")
    parser.add_argument(
        "--judge-url",
        default=os.environ.get("ECOALIGN_JUDGE_URL"),
        help="OpenAI base URL of an LLM judge (default: offline evaluators only)",
    )
    parser.add_argument("--judge-model", default=os.environ.get("ECOALIGN_JUDGE_MODEL"), help="judge model name")


def model_settings(settings: Any, args: argparse.Namespace) -> Any:
    """The settings with the command line's choices of model, judge and database (a flag wins over the setting)."""
    chosen = {
        "model_url": args.model_url or settings.model_url,
        "model": args.model or settings.model,
        "judge_url": args.judge_url or settings.judge_url,
        "judge_model": args.judge_model or settings.judge_model,
        "db_url": args.db or settings.db_url,
    }
    return settings.model_copy(update=chosen)
