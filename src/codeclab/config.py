"""One settings object, from (lowest to highest priority) defaults, a TOML file,
environment variables and command-line flags.

The TOML file is ``$CODECLAB_CONFIG`` if set, else ``./codeclab.toml`` if present::

    data_dir = "/var/lib/codeclab"
    database_url = "sqlite:////var/lib/codeclab/codeclab.db"   # or postgresql+psycopg://...
    store_url = "file:///var/lib/codeclab/objects"            # or s3://bucket/prefix
    public_url = "http://127.0.0.1:8000"                      # where the dashboard serves links
    publish = "success"                                       # or "always" / "never"
    price_per_gb_month = 0.023                                # storage cost estimate, USD
    admin_token = "..."        # the dashboard's admin actions: start/stop campaigns, delete...
    read_token = "..."         # when set, reading the dashboard needs a token too

    [sandbox]
    isolation = "bwrap"        # bwrap+seccomp, bwrap, landlock+seccomp, rlimits; default: strongest
    allow_weak_isolation = false  # run codec code with no file isolation (rlimits) anyway
    wall_seconds = 900
    cpu_seconds = 900
    memory_mb = 4096

    [llm]                      # how LLM designers call their model (the model: --designer)
    temperature = 0.7          # default: not sent (the model's own default)
    max_tokens = 16384         # most tokens of one reply
    timeout_s = 300            # one HTTP attempt
    max_retries = 2            # HTTP retries on 408/409/429/5xx and timeouts
    stream = false             # stream replies (server-sent events)
    api_key_env = "MY_KEY"     # variable holding the key (default: OPENAI_API_KEY...)

    [llm.prices]               # USD per million tokens; extends and overrides the built-in table
    "my-local-model" = { input = 0.0, output = 0.0 }

Environment variables: ``CODECLAB_DATA_DIR``, ``CODECLAB_DATABASE_URL``,
``CODECLAB_STORE_URL``, ``CODECLAB_PUBLIC_URL``, ``CODECLAB_ISOLATION``,
``CODECLAB_ADMIN_TOKEN``, ``CODECLAB_READ_TOKEN``. S3 credentials come from boto3's usual chain
(``AWS_ACCESS_KEY_ID`` ...), never from this file.

The dashboard's tokens have no command-line flag (a flag is visible to every local user in
``ps``).  They are never logged or shown: they are left out of the settings' ``repr``, and of
pickles (the settings travel to process-pool and Dask workers, which need no token).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from codeclab.sandbox.isolation import IsolationLevel
from codeclab.sandbox.jobs import SandboxSettings


class ConfigError(ValueError):
    """A setting has a bad value; the message names the file or variable and the key."""


def default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "codeclab"


PUBLISH_POLICIES = ("success", "always", "never")
TOKEN_FIELDS = ("admin_token", "read_token")
TOKEN_ENV = {"admin_token": "CODECLAB_ADMIN_TOKEN", "read_token": "CODECLAB_READ_TOKEN"}
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class LLMSettings:
    """How LLM designers call their model: the ``[llm]`` table (None: the client's default).

    Which model and endpoint is the campaign's ``--designer provider:model[@base_url]``; the key
    is only ever named (``api_key_env``), never held here.
    """

    temperature: float | None = None
    max_tokens: int | None = None
    timeout_s: float | None = None
    max_retries: int | None = None
    stream: bool | None = None
    api_key_env: str | None = None
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    """Model -> {"input": USD per million tokens, "output": ...}, over the built-in table."""

    def client_options(self) -> dict[str, Any]:
        """The options set here, as `LLMConfig` fields."""
        names = ("temperature", "max_tokens", "timeout_s", "max_retries", "stream", "api_key_env")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    database_url: str | None = None  # default: SQLite in the data dir
    store_url: str | None = None  # default: file store in the data dir
    public_url: str = "http://127.0.0.1:8000"
    publish: str = "success"
    price_per_gb_month: float = 0.023  # S3 Standard, the seed's figure
    llm: LLMSettings = field(default_factory=LLMSettings)
    # the dashboard's tokens (None: not configured); never shown, never pickled
    admin_token: str | None = field(default=None, repr=False)
    read_token: str | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in TOKEN_FIELDS:
            state[name] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'codeclab.db'}"

    @property
    def store(self) -> str:
        return self.store_url or (self.data_dir / "objects").absolute().as_uri()

    @property
    def secret_path(self) -> Path:
        return self.data_dir / "link-secret"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def scratch_dir(self) -> Path:
        return self.data_dir / "scratch"


def _isolation(value: Any, where: str) -> IsolationLevel:
    try:
        return IsolationLevel(str(value))
    except ValueError:
        known = ", ".join(level.value for level in IsolationLevel)
        raise ConfigError(f"{where}: isolation must be one of {known}, got {value!r}") from None


def _positive(table: dict[str, Any], key: str, where: str) -> int | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{where}: {key} must be a positive integer, got {value!r}")
    return value


def check_token(value: object, where: str) -> str | None:
    """A usable token, or None for an empty one; the error names `where`, never the value."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) < MIN_TOKEN_CHARS or value.strip() != value:
        raise ConfigError(
            f"{where} must be a string of at least {MIN_TOKEN_CHARS} characters without "
            "surrounding spaces (make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe())'`)"
        )
    return value


def _with_token(settings: Settings, name: str, token: str | None) -> Settings:
    if name == "admin_token":
        return replace(settings, admin_token=token)
    return replace(settings, read_token=token)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _llm(table: Any, where: str) -> LLMSettings:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    known = {"temperature", "max_tokens", "timeout_s", "max_retries", "stream", "api_key_env"}
    unknown = sorted(set(table) - known - {"prices"})
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    if "temperature" in table:
        temperature = table["temperature"]
        if not _number(temperature) or not 0 <= temperature <= 2:
            raise ConfigError(f"{where}: temperature must be a number from 0 to 2")
        values["temperature"] = float(temperature)
    for key in ("max_tokens", "max_retries"):
        if key in table:
            value = table[key]
            low = 1 if key == "max_tokens" else 0
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{where}: {key} must be an integer >= {low}, got {value!r}")
            values[key] = value
    if "timeout_s" in table:
        if not _number(table["timeout_s"]) or not table["timeout_s"] > 0:
            raise ConfigError(f"{where}: timeout_s must be a positive number of seconds")
        values["timeout_s"] = float(table["timeout_s"])
    if "stream" in table:
        if not isinstance(table["stream"], bool):
            raise ConfigError(f"{where}: stream must be true or false")
        values["stream"] = table["stream"]
    if "api_key_env" in table:
        name = table["api_key_env"]
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(
                f"{where}: api_key_env names an environment variable (the key itself never "
                "goes in a file), e.g. OPENAI_API_KEY"
            )
        values["api_key_env"] = name
    prices = table.get("prices", {})
    if not isinstance(prices, dict):
        raise ConfigError(f"{where}: prices must be a table of model = {{ input, output }}")
    checked: dict[str, dict[str, float]] = {}
    for model, entry in prices.items():
        if (
            not isinstance(entry, dict)
            or set(entry) != {"input", "output"}
            or not all(_number(v) and v >= 0 for v in entry.values())
        ):
            raise ConfigError(
                f"{where}: the price of {model!r} must be {{ input = USD, output = USD }} per "
                "million tokens, both >= 0"
            )
        checked[str(model)] = {"input": float(entry["input"]), "output": float(entry["output"])}
    return LLMSettings(**values, prices=checked)


def _from_toml(settings: Settings, path: Path) -> Settings:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc}") from None
    known = {
        "data_dir",
        "sandbox",
        "database_url",
        "store_url",
        "public_url",
        "publish",
        "price_per_gb_month",
        "llm",
        *TOKEN_FIELDS,
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    if "data_dir" in data:
        settings = replace(settings, data_dir=Path(str(data["data_dir"])).expanduser())
    for key in ("database_url", "store_url", "public_url", "publish"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise ConfigError(f"{path}: {key} must be a non-empty string")
            settings = replace(settings, **{key: data[key]})
    if "price_per_gb_month" in data:
        price = data["price_per_gb_month"]
        if not isinstance(price, int | float) or isinstance(price, bool) or price < 0:
            raise ConfigError(f"{path}: price_per_gb_month must be a number >= 0, got {price!r}")
        settings = replace(settings, price_per_gb_month=float(price))
    for name in TOKEN_FIELDS:
        if name in data:
            settings = _with_token(settings, name, check_token(data[name], f"{path}: {name}"))
    if "llm" in data:
        settings = replace(settings, llm=_llm(data["llm"], f"{path} [llm]"))
    table = data.get("sandbox", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [sandbox] must be a table")
    where = f"{path} [sandbox]"
    unknown = sorted(
        set(table)
        - {"isolation", "wall_seconds", "cpu_seconds", "memory_mb", "allow_weak_isolation"}
    )
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    limits = settings.sandbox.limits
    if (wall := _positive(table, "wall_seconds", where)) is not None:
        limits = replace(limits, wall_seconds=float(wall))
    if (cpu := _positive(table, "cpu_seconds", where)) is not None:
        limits = replace(limits, cpu_seconds=cpu)
    if (memory := _positive(table, "memory_mb", where)) is not None:
        limits = replace(limits, memory_bytes=memory << 20)
    isolation = settings.sandbox.isolation
    if "isolation" in table:
        isolation = _isolation(table["isolation"], where)
    allow_weak = table.get("allow_weak_isolation", settings.sandbox.allow_weak)
    if not isinstance(allow_weak, bool):
        raise ConfigError(f"{where}: allow_weak_isolation must be true or false")
    sandbox = replace(settings.sandbox, limits=limits, isolation=isolation, allow_weak=allow_weak)
    return replace(settings, sandbox=sandbox)


def load_settings(*, config_path: Path | None = None, data_dir: Path | None = None) -> Settings:
    """Build the settings: defaults < TOML file < environment < arguments."""
    settings = Settings()
    path = config_path or (
        Path(os.environ["CODECLAB_CONFIG"]) if "CODECLAB_CONFIG" in os.environ else None
    )
    if path is None and Path("codeclab.toml").is_file():
        path = Path("codeclab.toml")
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file not found")
        settings = _from_toml(settings, path)
    if env_dir := os.environ.get("CODECLAB_DATA_DIR"):
        settings = replace(settings, data_dir=Path(env_dir).expanduser())
    if value := os.environ.get("CODECLAB_DATABASE_URL"):
        settings = replace(settings, database_url=value)
    if value := os.environ.get("CODECLAB_STORE_URL"):
        settings = replace(settings, store_url=value)
    if value := os.environ.get("CODECLAB_PUBLIC_URL"):
        settings = replace(settings, public_url=value)
    for name, variable in TOKEN_ENV.items():
        if token := check_token(os.environ.get(variable), variable):
            settings = _with_token(settings, name, token)
    if env_isolation := os.environ.get("CODECLAB_ISOLATION"):
        level = _isolation(env_isolation, "CODECLAB_ISOLATION")
        settings = replace(settings, sandbox=replace(settings.sandbox, isolation=level))
    if data_dir is not None:
        settings = replace(settings, data_dir=data_dir)
    if settings.publish not in PUBLISH_POLICIES:
        raise ConfigError(
            f"publish must be one of {', '.join(PUBLISH_POLICIES)}, got {settings.publish!r}"
        )
    sandbox = replace(settings.sandbox, scratch_root=settings.scratch_dir)
    return replace(settings, sandbox=sandbox, data_dir=settings.data_dir)
