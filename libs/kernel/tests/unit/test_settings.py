"""Settings from HELIOS_* variables: validated at start-up, errors name the variable and never
print a secret value (P1 service start-up; E7 secrets never shown)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from helios.kernel.settings import KernelSettings, ServiceSettings, load_settings

pytestmark = pytest.mark.unit

DB_PASSWORD = "pg-Sup3r-s3cret-pw"
DATABASE_URL = f"postgresql://identity:{DB_PASSWORD}@127.0.0.1:5432/helios"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean HELIOS_* environment whose file settings point at existing files."""
    for name in list(os.environ):
        if name.upper().startswith("HELIOS_"):
            monkeypatch.delenv(name)
    for variable, filename in [
        ("HELIOS_TLS_CA_FILE", "ca.pem"),
        ("HELIOS_TLS_CERT_FILE", "identity.pem"),
        ("HELIOS_TLS_KEY_FILE", "identity.key"),
        ("HELIOS_PRINCIPAL_PUBLIC_KEY_FILE", "principal.pub"),
    ]:
        path = tmp_path / filename
        path.write_text("placeholder\n")
        monkeypatch.setenv(variable, str(path))
    return monkeypatch


def test_p1_kernel_settings_read_from_environment(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("HELIOS_LOG_LEVEL", "DEBUG")
    settings = load_settings(KernelSettings)
    assert settings.log_level == "DEBUG"
    assert settings.otel_exporter == "none"
    assert settings.tls_ca_file == tmp_path / "ca.pem"


def test_p1_service_settings_defaults_and_secret_url(env: pytest.MonkeyPatch) -> None:
    env.setenv("HELIOS_DATABASE_URL", DATABASE_URL)
    env.setenv("HELIOS_GRPC_PORT", "50070")
    settings = load_settings(ServiceSettings)
    assert settings.grpc_port == 50070
    assert settings.nats_url == "nats://127.0.0.1:4222"
    assert settings.database_role == ""
    assert settings.database_url.get_secret_value() == DATABASE_URL
    assert DB_PASSWORD not in repr(settings)
    assert DB_PASSWORD not in str(settings)


def test_p1_settings_are_frozen(env: pytest.MonkeyPatch) -> None:
    settings = load_settings(KernelSettings)
    with pytest.raises(ValidationError):
        settings.log_level = "ERROR"  # type: ignore[misc]


def test_p4_a_secret_may_be_a_file_in_the_secrets_folder(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """HELIOS_SECRETS_DIR (a mounted Kubernetes Secret): the file named after the variable
    holds the value; the environment wins over it; a folder that is not there stops the
    process with the variable named."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "HELIOS_DATABASE_URL").write_text(DATABASE_URL)
    env.setenv("HELIOS_SECRETS_DIR", str(folder))
    settings = load_settings(ServiceSettings)
    assert settings.database_url.get_secret_value() == DATABASE_URL
    env.setenv("HELIOS_DATABASE_URL", "postgresql://other@db/helios")
    assert (
        load_settings(ServiceSettings)
        .database_url.get_secret_value()
        .startswith("postgresql://other@")
    )
    env.setenv("HELIOS_SECRETS_DIR", str(tmp_path / "missing"))
    with pytest.raises(SystemExit) as exited:
        load_settings(ServiceSettings)
    assert exited.value.code == 2
    assert "invalid setting HELIOS_SECRETS_DIR: not a folder" in capsys.readouterr().err


def test_e7_bad_value_names_variable_without_printing_secret(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("HELIOS_DATABASE_URL", DATABASE_URL)
    env.setenv("HELIOS_GRPC_PORT", "not-a-port")
    env.setenv("HELIOS_DATABASE_ROLE", "Robert'); DROP TABLE users;--")
    with pytest.raises(SystemExit) as exited:
        load_settings(ServiceSettings)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert "invalid setting HELIOS_GRPC_PORT:" in captured.err
    assert "invalid setting HELIOS_DATABASE_ROLE:" in captured.err
    assert DB_PASSWORD not in captured.err + captured.out
    assert "not-a-port" not in captured.err
    assert "DROP TABLE" not in captured.err


def test_e7_bad_secret_itself_is_named_but_not_printed(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A value the process cannot use (an out-of-range port that happens to hold the password)
    is reported by name only."""
    env.setenv("HELIOS_DATABASE_URL", DATABASE_URL)
    env.setenv("HELIOS_GRPC_PORT", DB_PASSWORD)
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings)
    err = capsys.readouterr().err
    assert "HELIOS_GRPC_PORT" in err
    assert DB_PASSWORD not in err


def test_p1_missing_required_variable_is_named(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        load_settings(ServiceSettings)
    assert exited.value.code == 2
    assert "invalid setting HELIOS_DATABASE_URL: Field required" in capsys.readouterr().err


def test_e1_missing_certificate_file_is_named(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("HELIOS_TLS_KEY_FILE", str(tmp_path / "absent.key"))
    with pytest.raises(SystemExit):
        load_settings(KernelSettings)
    err = capsys.readouterr().err
    assert "invalid setting HELIOS_TLS_KEY_FILE: Value error, file not found" in err
    assert "HELIOS_TLS_CA_FILE" not in err


def test_p1_log_level_outside_the_allowed_set_is_refused(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("HELIOS_LOG_LEVEL", "TRACE")
    with pytest.raises(SystemExit):
        load_settings(KernelSettings)
    assert "invalid setting HELIOS_LOG_LEVEL:" in capsys.readouterr().err


def test_p1_port_out_of_range_is_refused(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("HELIOS_DATABASE_URL", DATABASE_URL)
    env.setenv("HELIOS_GRPC_PORT", "70000")
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings)
    assert "invalid setting HELIOS_GRPC_PORT:" in capsys.readouterr().err


def test_p4_health_port_is_off_by_default_and_read_from_the_environment(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("HELIOS_DATABASE_URL", DATABASE_URL)
    assert load_settings(ServiceSettings).health_port == 0
    env.setenv("HELIOS_HEALTH_PORT", "8081")
    assert load_settings(ServiceSettings).health_port == 8081
    env.setenv("HELIOS_HEALTH_PORT", "-1")
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings)
    assert "invalid setting HELIOS_HEALTH_PORT:" in capsys.readouterr().err
