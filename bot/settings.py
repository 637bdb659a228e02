"""All configuration, read once from the environment or `.env`, validated at start."""
from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing import Annotated

from dialogs.regions import region_keys


MIN_SECRET = 32
WEBHOOK_SECRET = re.compile(rf"[A-Za-z0-9_-]{{{MIN_SECRET},256}}")
METRICS_TOKEN = re.compile(rf"[!-~]{{{MIN_SECRET},}}")  # printable ASCII: it travels in a header


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it and says what to do."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str | None = None
    operator_chat_id: int | None = None
    police_chat_id: int | None = None
    # Regions' own staff chats: "kyiv=-1001111,lviv=-1002222" (keys of content/regions.yaml for COUNTRY)
    operator_chats: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    police_chats: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    admin_ids: Annotated[tuple[int, ...], NoDecode] = ()
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None

    viber_auth_token: SecretStr | None = None
    viber_webhook_url: str | None = None
    viber_api_url: str | None = None
    viber_bot_name: str = "Oberih"

    data_dir: Path = Path("data")
    keys_dir: Path | None = None  # default: beside DATA_DIR, see resolved_keys_dir
    database_url: str | None = None
    database_pool_size: int = Field(20, ge=1)  # PostgreSQL connections a process keeps (and uses at most)
    data_key: SecretStr | None = None
    id_pepper: SecretStr | None = None

    web_host: str = "127.0.0.1"
    web_port: int = Field(8080, ge=0, le=65535)
    metrics_token: SecretStr | None = None

    default_language: str = "uk"
    country: str = "UA"
    content_dir: Path = Path(__file__).resolve().parent.parent / "content"

    retention_days: int = Field(90, ge=1)
    sla_minutes: int = Field(60, ge=1)
    urgent_sla_minutes: int = Field(10, ge=1)
    checkin_days: int = Field(3, ge=1)
    draft_ttl_hours: int = Field(72, ge=1)
    daily_report_cap: int = Field(5, ge=1)
    child_messages_per_minute: int = Field(30, ge=1)
    # Wrong receipt codes from everyone in an hour before receipt entry pauses (README, Security: receipts).
    receipt_wrong_codes_per_hour: int = Field(30, ge=1)
    # Counts below this are published as "<N"; under 3 a count would single a child out (README, Statistics).
    stats_min_cell: int = Field(5, ge=3)

    # Telegram's published limits (Bot FAQ); raised only against a test server.
    rate_global_per_second: float = Field(30, gt=0)
    rate_chat_per_second: float = Field(1, gt=0)
    rate_group_per_minute: float = Field(20, gt=0)
    inbox_max_attempts: int = Field(5, ge=1)

    log_level: str = "INFO"

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.replace(" ", "").split(",") if part)
        return value

    @field_validator("operator_chats", "police_chats", mode="before")
    @classmethod
    def _split_chats(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        chats: dict[str, int] = {}
        for pair in (part.strip() for part in value.split(",")):
            key, _, chat = pair.partition("=")
            if not pair:
                continue
            if not key.strip() or not chat.strip().lstrip("-").isdigit() or key.strip() in chats:
                raise ValueError(f"'{pair}' is not a region=chat_id pair (e.g. kyiv=-1001234567890), or names "
                                 "its region twice")
            chats[key.strip().lower()] = int(chat)
        return chats

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _strong_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not WEBHOOK_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError(
                f"must be {MIN_SECRET}-256 characters of A-Z a-z 0-9 _ - (Telegram's alphabet), so that nobody can "
                "guess it and post forged updates: generate one, e.g. `openssl rand -hex 32`")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _strong_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not METRICS_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError(f"must be at least {MIN_SECRET} characters without spaces: generate one, e.g. "
                             "`openssl rand -hex 32`")
        return value

    @field_validator("country")
    @classmethod
    def _upper_country(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _telegram_needs_operator_chat(self) -> Settings:
        if (self.telegram_bot_token or self.viber_auth_token) and self.operator_chat_id is None:
            raise ValueError(
                "OPERATOR_CHAT_ID is required when TELEGRAM_BOT_TOKEN or VIBER_AUTH_TOKEN is set: "
                "reports from children are delivered to that Telegram forum supergroup"
            )
        if self.viber_auth_token and not self.telegram_bot_token:
            raise ValueError(
                "VIBER_AUTH_TOKEN is set without TELEGRAM_BOT_TOKEN: Viber children's cases are "
                "answered in the Telegram operator chat, so the bot also needs TELEGRAM_BOT_TOKEN"
            )
        if self.viber_auth_token and not self.viber_webhook_url:
            raise ValueError("VIBER_WEBHOOK_URL is required with VIBER_AUTH_TOKEN (Viber only pushes webhooks)")
        if self.telegram_webhook_url and not self.telegram_webhook_secret:
            raise ValueError("TELEGRAM_WEBHOOK_SECRET is required with TELEGRAM_WEBHOOK_URL")
        return self

    @model_validator(mode="after")
    def _known_regions(self) -> Settings:
        known = region_keys(self.content_dir, self.country) if self.operator_chats or self.police_chats else frozenset()
        for name, chats in (("OPERATOR_CHATS", self.operator_chats), ("POLICE_CHATS", self.police_chats)):
            unknown = sorted(set(chats) - known)
            if unknown:
                raise ValueError(
                    f"{name} names the region '{unknown[0]}', which content/regions.yaml does not list for "
                    f"{self.country}: use one of its keys ({', '.join(sorted(known)) or 'none'})")
        if self.police_chats and self.police_chat_id is None:
            raise ValueError("POLICE_CHATS needs POLICE_CHAT_ID too: cases of other regions go to that chat")
        return self

    @model_validator(mode="after")
    def _keys_apart_from_data(self) -> Settings:
        keys, data = self.resolved_keys_dir, self.data_dir.resolve()
        if keys == data or data in keys.parents:
            raise ValueError(
                f"KEYS_DIR ({keys}) must lie outside DATA_DIR ({data}): whoever gets the data, or a backup of it, "
                "must not get the keys with it")
        keys_given = _given(self.data_key) and _given(self.id_pepper)
        if not self.resolved_database_url.startswith("sqlite") and not keys_given:
            raise ValueError(
                "DATA_KEY and ID_PEPPER are required with a PostgreSQL DATABASE_URL: every process must seal and "
                "hash with the same keys, which a process would otherwise generate for itself")
        return self

    @property
    def resolved_keys_dir(self) -> Path:
        """KEYS_DIR, or by default a folder beside DATA_DIR named after it: data -> data-keys."""
        if self.keys_dir is not None:
            return self.keys_dir.resolve()
        data = self.data_dir.resolve()
        return data.parent / f"{data.name or 'data'}-keys"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'oberih.db'}"

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_bot_token is not None

    @property
    def viber_enabled(self) -> bool:
        return self.viber_auth_token is not None


def _given(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value().strip())


def load_settings(**overrides: object) -> Settings:
    """Read settings; raise SettingsError with a sentence that names the bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = "_".join(str(part) for part in item["loc"]).upper()
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}" if name else message)
        raise SettingsError("Configuration problem — " + "; ".join(problems)) from None
