"""Choosing a Weaviate connection: the description it records, its refusals, its secrecy.

The description goes into run metadata and logs, so it must say which server was used and why,
and never carry the API key; a misconfiguration must fail before anything is written.
"""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from resources.weaviate import connection
from resources.weaviate.connection import (
    ConnectionSettings,
    WeaviateConnectionError,
    resolve,
)
from resources.weaviate.server import WEAVIATE_VERSION, LocalServer
from tests.conftest import managed_settings

SECRET = "top-secret-key-4711"


def test_auto_uses_the_configured_url_as_a_custom_server():
    settings = ConnectionSettings(url="http://weaviate.internal:8080", api_key=SECRET)
    target = resolve(settings)
    assert target.mode == "custom"
    assert target.description == "custom at weaviate.internal:8080 (auto: WEAVIATE_URL is set)"
    assert SECRET not in repr(target) and SECRET not in repr(settings)


def test_auto_without_a_url_uses_the_managed_server_and_says_why(tmp_path: Path):
    settings = ConnectionSettings(data_dir=str(tmp_path), managed_port=18123, api_key=SECRET)
    target = resolve(settings)
    assert target.mode == "managed"
    assert target.description == (
        f"managed Weaviate {WEAVIATE_VERSION} on 127.0.0.1:18123 (data {tmp_path / 'weaviate'})"
        " (auto: no WEAVIATE_URL)"
    )
    assert SECRET not in repr(target) and SECRET not in repr(settings.managed_server())


@pytest.mark.parametrize(
    ("settings", "description"),
    [
        (ConnectionSettings(mode="LOCAL", url="localhost"), "local at localhost:8080"),
        (ConnectionSettings(mode="custom", url="https://w.example"), "custom at w.example:443"),
        (ConnectionSettings(mode="cloud", url="https://x.weaviate.cloud"), "cloud at x.weaviate"),
        (ConnectionSettings(mode="managed", url="http://ignored:1"), "managed Weaviate"),
    ],
)
def test_an_explicit_mode_is_used_as_given(settings, description):
    target = resolve(settings)
    assert target.mode == settings.mode.lower()
    assert target.description.startswith(description)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            ConnectionSettings(mode="nosql"),
            "unknown Weaviate mode 'nosql'; use one of ('auto', 'managed', 'local', 'custom', "
            "'cloud')",
        ),
        (ConnectionSettings(mode="local"), "Weaviate mode 'local' needs a URL (WEAVIATE_URL)"),
        (ConnectionSettings(mode="custom"), "Weaviate mode 'custom' needs a URL (WEAVIATE_URL)"),
        (ConnectionSettings(mode="cloud"), "Weaviate mode 'cloud' needs a URL (WEAVIATE_URL)"),
        (ConnectionSettings(url="http://:8080"), "WEAVIATE_URL 'http://:8080' has no host"),
    ],
)
def test_misconfiguration_is_refused_clearly(settings, message):
    with pytest.raises(WeaviateConnectionError) as caught:
        resolve(settings)
    assert str(caught.value) == message


def test_cloud_without_a_key_is_refused_before_connecting():
    target = resolve(ConnectionSettings(mode="cloud", url="https://x.weaviate.cloud"))
    with pytest.raises(WeaviateConnectionError) as caught:
        target.connect()
    assert str(caught.value) == "Weaviate mode 'cloud' needs WEAVIATE_API_KEY"


def test_connection_errors_name_the_target_and_hide_the_api_key():
    settings = ConnectionSettings(mode="custom", url="http://127.0.0.1:9", grpc_port=9,
                                  api_key=SECRET)  # fmt: skip
    with pytest.raises(WeaviateConnectionError) as caught:
        resolve(settings).connect()
    first_line, detail = str(caught.value).split("\n", 1)
    assert first_line == (
        "cannot reach Weaviate (custom at 127.0.0.1:9): start it, or point WEAVIATE_URL (and "
        "WEAVIATE_GRPC_PORT) at one that runs; unset WEAVIATE_URL to use the managed server."
    )
    assert detail.startswith("The client said: ")
    assert SECRET not in str(caught.value)


def test_a_client_error_that_echoes_the_key_is_masked(monkeypatch):
    def echoing_connect(**kwargs):
        raise ValueError(f"rejected credentials {kwargs['auth_credentials']}")

    monkeypatch.setattr(connection.weaviate, "connect_to_custom", echoing_connect)
    settings = ConnectionSettings(url="http://weaviate.internal:8080", api_key=SECRET)
    with pytest.raises(WeaviateConnectionError) as caught:
        resolve(settings).connect()
    assert str(caught.value).startswith(
        "cannot reach Weaviate (custom at weaviate.internal:8080 (auto: WEAVIATE_URL is set)): "
    )
    assert str(caught.value).endswith("\nThe client said: rejected credentials ***")


def test_a_managed_client_without_a_configured_key_finds_the_generated_one(tmp_path: Path):
    """Every process that connects (a run, the CLI, the UI's runs) reads the key the server
    was started with from its data folder."""
    settings = managed_settings(tmp_path)
    first = settings.managed_port
    server = settings.managed_server()
    try:
        with resolve(settings).connect() as client:
            assert client.collections.list_all(simple=True) == {}
        assert server.api_key == (tmp_path / "weaviate" / "api-key").read_text().strip()
        with resolve(dataclasses.replace(settings, mode="managed")).connect() as again:
            assert again.is_ready()
        anonymous = ConnectionSettings(mode="custom", url=f"http://127.0.0.1:{first}",
                                       grpc_port=first + 1)  # fmt: skip
        with pytest.raises(WeaviateConnectionError) as caught:
            resolve(anonymous).connect()
        assert "401" in str(caught.value)
    finally:
        server.stop()


def test_a_client_error_that_echoes_the_generated_key_is_masked(tmp_path: Path, monkeypatch):
    def echoing_connect(**kwargs):
        raise ValueError(f"rejected credentials {kwargs['auth_credentials']}")

    monkeypatch.setattr(LocalServer, "start", lambda server: False)
    monkeypatch.setattr(connection.weaviate, "connect_to_custom", echoing_connect)
    settings = ConnectionSettings(data_dir=str(tmp_path))
    with pytest.raises(WeaviateConnectionError) as caught:
        resolve(settings).connect()
    assert str(caught.value).endswith("\nThe client said: rejected credentials ***")
    assert settings.managed_server().api_key not in str(caught.value)


def test_a_managed_target_starts_its_server_and_uses_the_key(tmp_path: Path):
    settings = managed_settings(tmp_path, api_key=SECRET)
    first = settings.managed_port
    server = settings.managed_server()
    assert server.pid() is None
    try:
        with resolve(settings).connect() as client:
            assert client.is_ready()
            assert client.get_meta()["version"] == WEAVIATE_VERSION
            assert client.collections.list_all(simple=True) == {}
        assert server.root == tmp_path / "weaviate"
        assert not server.api_key_file.exists(), "the configured key wins"
        assert server.pid() is not None
        assert server.status().startswith(f"running: {server.describe()}, pid {server.pid()}")

        wrong = ConnectionSettings(mode="custom", url=f"http://127.0.0.1:{first}",
                                   grpc_port=first + 1, api_key="wrong-key-0815")  # fmt: skip
        with pytest.raises(WeaviateConnectionError) as caught:
            resolve(wrong).connect()
        message = str(caught.value)
        assert message.startswith(f"cannot reach Weaviate (custom at 127.0.0.1:{first}): ")
        assert "401" in message and "unauthorized: invalid api key" in message
        assert "wrong-key-0815" not in message and SECRET not in message
    finally:
        server.stop()
    assert server.status() == f"stopped: {server.describe()}"


def test_a_managed_server_that_cannot_start_is_a_connection_error(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("resources.weaviate.server.PORT_RELEASE_SECONDS", 0.5)
    first = LocalServer.on_free_ports(tmp_path).http_port  # a block of six free ports
    settings = ConnectionSettings(mode="managed", data_dir=str(tmp_path), managed_port=first,
                                  managed_grpc_port=first + 1, managed_cluster_port=first + 2,
                                  api_key=SECRET)  # fmt: skip
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", first + 1))
        other_program.listen()
        with pytest.raises(WeaviateConnectionError) as caught:
            resolve(settings).connect()
    assert str(caught.value) == (
        f"cannot start {settings.managed_server().describe()}: port {first + 1} is taken by "
        "another program; choose other ports or stop it"
    )
    assert settings.managed_server().pid() is None
