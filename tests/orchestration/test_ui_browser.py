"""In a real browser, the UI's asset graph and the partitions page of `weaviate_index` show the
shard partitions with their materialized and missing counts.

The instance gets five shard partitions, three of them with a recorded `weaviate_index`
materialization; headless Chromium (Debian's `chromium` package) then reads the UI. Screenshots go
to the test's tmp dir and, where `UI_SCREENSHOT_DIR` is set, there too.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from dagster import AssetMaterialization, DagsterInstance

from orchestration.instance import SETTINGS_FILE

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags headless Chromium needs as root in a container; without them connections are refused.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The code location's name as the UI routes it: the workspace's module and attribute.
LOCATION = "orchestration.definitions:defs"
SHARDS = [f"docs-s{index:05d}" for index in range(5)]
MATERIALIZED = [SHARDS[0], SHARDS[1], SHARDS[3]]
MISSING = [key for key in SHARDS if key not in MATERIALIZED]
# The first page waits for the webserver to load the code location; later ones are quick.
FIRST_LOAD_MS = 90_000
LOAD_MS = 20_000

pytestmark = [
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason="needs Debian's chromium package (/usr/bin/chromium): apt-get install chromium",
    ),
    pytest.mark.timeout(300),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare_instance(home: Path) -> None:
    """The project's instance settings, the shard partitions, and some materialized ones."""
    shutil.copy(SETTINGS_FILE, home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("shards", SHARDS)
        for key in MATERIALIZED:
            instance.report_runless_asset_event(
                AssetMaterialization(asset_key="weaviate_index", partition=key)
            )


def _wait_for_server(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the webserver exited with {server.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the webserver did not answer within 120 s")


def _save(page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("UI_SCREENSHOT_DIR"):
        target = Path(os.environ["UI_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / name)
    return shot


def _dismiss_dialog(page) -> None:
    """Skip the community dialog, should it open although its flag is set."""
    skip = page.get_by_role("button", name="Skip", exact=True)
    if skip.is_visible():
        skip.click()


def test_ui_shows_shard_partitions_materialized_and_missing(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (dev extras)")
    expect = sync_api.expect
    home = tmp_path / "dagster_home"
    home.mkdir()
    _prepare_instance(home)

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    webserver = Path(sys.executable).parent / "dagster-webserver"
    server = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_server(port, server)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1600, "height": 1000},
            )
            try:
                page = browser.new_page()
                # The first visit opens a "Join the Dagster community" dialog over the page; this
                # is the flag its Skip button stores.
                page.add_init_script("window.localStorage.setItem('communityNux', '\"1\"')")

                # The asset graph of the "indexing" group: one node per asset, each with the
                # partition fill of its five shards.
                page.goto(f"{base}/locations/{quote(LOCATION)}/asset-groups/indexing/lineage")
                nodes = {
                    asset: page.locator("foreignObject").filter(
                        has=page.get_by_text(asset, exact=True)
                    )
                    for asset in ("corpus_shard", "chunks", "embeddings", "weaviate_index")
                }
                index_node = nodes.pop("weaviate_index")
                index_fill = index_node.get_by_role("link", name="60% filled", exact=True)
                expect(index_fill).to_be_visible(timeout=FIRST_LOAD_MS)
                expect(index_node).to_contain_text("5 partitions")
                for asset, node in nodes.items():
                    fill = node.get_by_role("link", name="0% filled", exact=True)
                    expect(fill, f"{asset}: no shard materialized").to_be_visible()
                    expect(node).to_contain_text("5 partitions")
                _dismiss_dialog(page)
                _save(page, tmp_path, "ui-asset-graph.png")

                # The node's fill links to the asset's partitions page.
                index_fill.click()
                expect(page).to_have_url(f"{base}/assets/weaviate_index?view=partitions")
                expect(page.get_by_text("5 Partitions Selected")).to_be_visible(timeout=LOAD_MS)
                for label in ("Materialized (3)", "Missing (2)", "Failed (0)"):
                    expect(page.get_by_text(label, exact=True)).to_be_visible()
                for key in SHARDS:
                    expect(page.get_by_title(key, exact=True)).to_be_visible()
                _save(page, tmp_path, "ui-partitions.png")

                # Each status filter narrows the list to the shards of that status.
                for hide, shown, hidden in (
                    ("Materialized (3)", MISSING, MATERIALIZED),
                    ("Missing (2)", MATERIALIZED, MISSING),
                ):
                    checkbox = page.get_by_role("checkbox", name=hide)
                    toggle = page.locator("label").filter(has=checkbox)
                    toggle.click()
                    expect(checkbox).not_to_be_checked()
                    count = f"{len(shown)} Partitions Selected"
                    expect(page.get_by_text(count)).to_be_visible(timeout=LOAD_MS)
                    for key in shown:
                        expect(page.get_by_title(key, exact=True)).to_be_visible()
                    for key in hidden:
                        expect(page.get_by_title(key, exact=True)).to_have_count(0)
                    toggle.click()
                    expect(checkbox).to_be_checked()
                    expect(page.get_by_text("5 Partitions Selected")).to_be_visible()
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
