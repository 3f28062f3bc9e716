"""One settings object, read from ``KASAR_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KASAR_", extra="ignore")

    database_url: str = "sqlite:///kasar.db"
    default_phone_region: str = "FR"
    max_body_bytes: int = 10 * 1024 * 1024
    import_batch_max: int = 50
    import_max_seconds: float = 300.0
    export_limit_max: int = 10_000
    filter_max_depth: int = 5
    filter_max_conditions: int = 50
    text_max_length: int = 65_535
    rate_limit_per_minute: int = 6000
    log_level: str = "INFO"
    # Duplicates (docs/duplicates.md): the score from which a pair is a possible
    # duplicate, and how long a merge can be undone.
    fuzzy_threshold: float = 0.85
    merge_retention_days: int = 30
    # How long an export job's file can be downloaded after the job ends
    # (docs/export-jobs.md, "Storage").
    export_retention_days: float = 7.0
    # Run queued jobs inside the server process: "auto" = yes on SQLite, no on
    # PostgreSQL (where `kasar worker` processes do it).
    run_jobs: str = "auto"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
