"""Settings: environment variables, then `.env`, then the defaults below."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
PositiveSeconds = Annotated[float, Field(gt=0, le=3600)]


class Settings(BaseSettings):
    """Everything the service reads from its environment, validated at start."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    database_url: SecretStr = SecretStr("sqlite+aiosqlite:///./data/app.db")
    log_level: LogLevel = "info"
    log_format: Literal["json", "console"] = "json"

    job_concurrency: int = Field(default=4, ge=1, le=256)
    job_max_attempts: int = Field(default=3, ge=1, le=100)
    job_lease_seconds: PositiveSeconds = 30.0
    job_poll_interval_seconds: PositiveSeconds = 1.0
    job_retry_backoff_seconds: PositiveSeconds = 2.0
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=3600)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        scheme = url.partition("://")[0]
        if "+" not in scheme:
            msg = "must name an async driver, for example sqlite+aiosqlite:///./data/app.db"
            raise ValueError(msg)
        return value


def describe_errors(error: ValidationError) -> str:
    """One line naming each invalid variable and its problem, never its value."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        variable = "_".join(str(part) for part in item["loc"]).upper() or "SETTINGS"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{variable}: {message}")
    return "invalid setting " + "; ".join(problems)
