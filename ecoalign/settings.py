"""Settings from ``ECOALIGN_*`` environment variables (pydantic-settings). One object, read once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_db_url() -> str:
    return f"sqlite:///{Path.cwd() / 'ecoalign.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ECOALIGN_", extra="ignore")

    db_url: str = Field(default_factory=default_db_url, description="SQLAlchemy URL; SQLite file by default")
    broker_url: str = "redis://127.0.0.1:6379/0"
    model_url: str | None = Field(None, description="OpenAI base URL of the chat model (…/v1); None = offline")
    model: str | None = None
    model_api_key: str | None = None
    judge_url: str | None = None
    judge_model: str | None = None
    judge_api_key: str | None = None
    model_timeout_s: float = 60.0
    model_max_retries: int = 4
    model_concurrency: int = 8
    max_image_bytes: int = 8 * 1024 * 1024
    max_images: int = 8
    max_text_chars: int = 32_000
    allow_remote_images: bool = False
    node_lease_s: int = 120
    max_node_attempts: int = 3


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
