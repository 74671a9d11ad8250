import pytest

from resources.weaviate import connection
from resources.weaviate.connection import (
    ConnectionSettings,
    Target,
    WeaviateConnectionError,
    resolve,
)


def test_auto_uses_the_configured_url_first():
    target = resolve(ConnectionSettings(url="http://weaviate.internal:8080", api_key="s3cret"))
    assert target.mode == "custom"
    assert "weaviate.internal:8080" in target.description
    assert "s3cret" not in target.description and "s3cret" not in repr(target)


def test_auto_falls_back_to_the_sandbox_with_the_reason(monkeypatch):
    monkeypatch.setattr(connection, "_embedded_available", lambda: (False, "binary not cached"))
    target = resolve(ConnectionSettings(sandbox_port=18090))
    assert target.mode == "sandbox"
    assert "binary not cached" in target.description
    assert "set WEAVIATE_URL for a real Weaviate" in target.description


def test_auto_prefers_embedded_when_its_binary_is_available(monkeypatch):
    monkeypatch.setattr(connection, "_embedded_available", lambda: (True, "binary cached"))
    assert resolve(ConnectionSettings()).mode == "embedded"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (ConnectionSettings(mode="nosql"), "unknown Weaviate mode 'nosql'"),
        (ConnectionSettings(mode="local"), "needs a URL"),
        (ConnectionSettings(mode="cloud"), "needs a URL"),
    ],
)
def test_misconfiguration_is_refused_clearly(settings, message):
    with pytest.raises(WeaviateConnectionError, match=message):
        resolve(settings)


def test_connection_errors_name_the_target_and_hide_the_api_key():
    settings = ConnectionSettings(mode="custom", url="http://127.0.0.1:9", grpc_port=9,
                                  api_key="top-secret-key")  # fmt: skip
    with pytest.raises(WeaviateConnectionError) as caught:
        resolve(settings).connect()
    assert "custom at 127.0.0.1:9" in str(caught.value)
    assert "top-secret-key" not in str(caught.value)


def test_embedded_failure_names_the_other_modes(monkeypatch, tmp_path):
    def no_download(**_):
        raise OSError("Name or service not known")

    monkeypatch.setattr(connection.weaviate, "connect_to_embedded", no_download)
    target = Target(
        "embedded", "embedded", ConnectionSettings(mode="embedded", data_dir=str(tmp_path))
    )
    with pytest.raises(WeaviateConnectionError) as caught:
        target.connect()
    for word in ("network access", "'local'/'custom'", "'cloud'", "'sandbox'"):
        assert word in str(caught.value)
