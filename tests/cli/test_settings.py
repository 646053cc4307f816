"""One precedence: flag > environment > config file > default; clear errors naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpi.settings import ConfigError, Settings, load_settings, redact_url

FILE_BROKER = "amqp://mcpi:file@192.0.2.10:5672/mcpi"
FILE_BACKEND = "redis://mcpi:file@192.0.2.10:6379/0"
ENV_BROKER = "amqp://mcpi:env@192.0.2.11:5672/mcpi"
FLAG_BROKER = "amqp://mcpi:flag@192.0.2.12:5672/mcpi"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def write_config(env: dict[str, str], text: str) -> Path:
    path = Path(env["XDG_CONFIG_HOME"]) / "mcpi" / "hub.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def test_defaults_mean_no_cluster(home: dict[str, str]) -> None:
    settings = load_settings({}, home)
    assert settings == Settings(cache_dir=Path(home["HOME"]) / ".cache" / "mcpi")
    assert not settings.cluster_configured


def test_the_cache_directory_follows_xdg_and_can_be_set(home: dict[str, str]) -> None:
    assert load_settings({}, {**home, "XDG_CACHE_HOME": "/x"}).cache_dir == Path("/x/mcpi")
    assert load_settings({}, {**home, "MCPI_CACHE_DIR": "/y"}).cache_dir == Path("/y")
    with pytest.raises(ConfigError, match="wave_chunks in"):
        write_config(home, "wave_chunks = 0\n")
        load_settings({}, home)


def test_flag_beats_environment_beats_file_beats_default(home: dict[str, str]) -> None:
    path = write_config(
        home, f'broker_url = "{FILE_BROKER}"\nresult_backend = "{FILE_BACKEND}"\ntimeout = "2h"\n'
    )
    from_file = load_settings({}, home)
    assert (from_file.broker_url, from_file.timeout, from_file.config_file) == (
        FILE_BROKER,
        7200,
        path,
    )
    assert from_file.connect_timeout == Settings().connect_timeout

    env = {**home, "MCPI_BROKER_URL": ENV_BROKER, "MCPI_TIMEOUT": "90"}
    from_env = load_settings({}, env)
    assert (from_env.broker_url, from_env.result_backend, from_env.timeout) == (
        ENV_BROKER,
        FILE_BACKEND,
        90,
    )

    from_flag = load_settings({"broker_url": FLAG_BROKER, "timeout": None}, env)
    assert (from_flag.broker_url, from_flag.timeout) == (FLAG_BROKER, 90)


def test_config_path_from_environment_or_flag(home: dict[str, str], tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text(f'broker_url = "{ENV_BROKER}"\nresult_backend = "{FILE_BACKEND}"\n')
    assert load_settings({}, {**home, "MCPI_CONFIG": str(other)}).broker_url == ENV_BROKER
    assert load_settings({"config": str(other)}, home).config_file == other
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({"config": str(tmp_path / "missing.toml")}, home)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("broker_url = ", "not valid TOML"),
        ('brokr_url = "x"', "unknown setting 'brokr_url'"),
        ('broker_url = "http://h"\nresult_backend = "redis://h"', "broker_url in"),
        ("timeout = -3", "timeout in"),
        ('chunk_retries = "many"', "chunk_retries in"),
        (f'broker_url = "{FILE_BROKER}"', "result_backend"),
    ],
)
def test_malformed_config_file_names_the_problem(
    home: dict[str, str], text: str, named: str
) -> None:
    write_config(home, text)
    with pytest.raises(ConfigError, match=named):
        load_settings({}, home)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MCPI_BROKER_URL", "localhost:5672"),
        ("MCPI_TIMEOUT", "soon"),
        ("MCPI_CONNECT_TIMEOUT", "0"),
        ("MCPI_RESULT_BACKEND", "redis://:1234"),
        ("MCPI_BROKER_URL", "amqp://h:99999999/"),
    ],
)
def test_malformed_environment_names_the_variable(
    home: dict[str, str], name: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({}, {**home, name: value})


def test_redaction_hides_passwords_only() -> None:
    assert redact_url("amqp://mcpi:s3cret@h:5672/v") == "amqp://mcpi:***@h:5672/v"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
