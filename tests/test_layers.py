"""The folders are layers: orchestration/ builds on assets/, which builds on resources/; no
module reaches back up, not even by a module name in a string (a Dagster run launcher setting,
say). The packages of resources/ are layers too, in the order of `RESOURCE_PACKAGES`: the
model's tokenizer below the corpus (chunks are windows of its tokens), the corpus below the
embedding engine (whose profiling embeds sample chunks); Weaviate's naming rules below the
corpus, whose metadata keys follow them."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ABOVE = {"resources": ("assets", "orchestration"), "assets": ("orchestration",)}
# Lowest first: a package may import those before it, never one after it.
RESOURCE_PACKAGES = ["tokenizer", "weaviate", "corpus", "embedding"]


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # a module named in a string: import_module("...")
    return names


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_no_module_reaches_a_layer_above_its_own(layer):
    upward = [
        f"{path.relative_to(ROOT)} names {name}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        for name in _imported(path)
        if name.split(".")[0] in ABOVE[layer]
    ]
    assert upward == []


def test_every_package_of_resources_has_its_layer():
    packages = {path.parent.name for path in (ROOT / "resources").glob("*/__init__.py")}
    assert packages == set(RESOURCE_PACKAGES)


@pytest.mark.parametrize("package", RESOURCE_PACKAGES)
def test_no_package_of_resources_reaches_a_sibling_above_its_own(package):
    above = RESOURCE_PACKAGES[RESOURCE_PACKAGES.index(package) + 1 :]
    upward = [
        f"{path.relative_to(ROOT)} names {name}"
        for path in sorted((ROOT / "resources" / package).rglob("*.py"))
        for name in _imported(path)
        if name.split(".")[:2] in [["resources", sibling] for sibling in above]
    ]
    assert upward == []
