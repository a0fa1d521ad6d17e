"""Settings: each integration's sources (a secrets store), environment variables, `.env`, then the defaults below."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .adapters.database import URL_SCHEME
from .adapters.engine import DEFAULT_URL
from .integrations import installed

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
    database_url: SecretStr = SecretStr(DEFAULT_URL)
    # How long the service waits for the database at start before it gives up.
    database_connect_timeout_seconds: PositiveSeconds = 15.0
    log_level: LogLevel = "info"
    log_format: Literal["json", "console"] = "json"

    job_concurrency: int = Field(default=4, ge=1, le=256)
    job_max_attempts: int = Field(default=3, ge=1, le=100)
    # A dead process's running jobs run again about one lease after it died.
    job_lease_seconds: PositiveSeconds = 15.0
    # A handler running longer fails its attempt (kinds may set their own).
    job_timeout_seconds: PositiveSeconds = 600.0
    # Finished jobs are deleted this long after they finished (default 3 days).
    job_retention_seconds: float = Field(default=259_200.0, gt=0, le=10 * 365 * 86_400)
    job_poll_interval_seconds: PositiveSeconds = 1.0
    job_retry_backoff_seconds: PositiveSeconds = 2.0
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=3600)

    # What one client may ask of the server (docs/design.md, "Request limits").
    max_request_body_bytes: int = Field(default=1_048_576, ge=1, le=1_073_741_824)
    request_body_timeout_seconds: PositiveSeconds = 10.0
    max_request_header_bytes: int = Field(default=16_384, ge=1_024, le=1_048_576)
    limit_concurrency: int = Field(default=512, ge=1, le=65_535)
    keep_alive_timeout_seconds: int = Field(default=5, ge=1, le=3600)
    # After SIGTERM, readiness is 503 this long before the listener closes, so load
    # balancers stop sending first (0: Kubernetes' preStop pause does that instead).
    shutdown_delay_seconds: float = Field(default=0.0, ge=0, le=300)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Code, each integration's sources, environment, `.env`, secrets directory, defaults."""
        integrations = [
            source
            for integration in installed()
            for source in integration.settings_sources(settings_cls)
        ]
        return (init_settings, *integrations, env_settings, dotenv_settings, file_secret_settings)

    @field_validator("database_url")
    @classmethod
    def _rendered_driver(cls, value: SecretStr) -> SecretStr:
        scheme = value.get_secret_value().partition("://")[0]
        if scheme != URL_SCHEME:
            msg = f"must be a {URL_SCHEME}:// URL, for example {DEFAULT_URL}"
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
