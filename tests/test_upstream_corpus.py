"""The upstream corpus (tests/data/upstream/) is well formed and speaks the pinned frameworks' language.

Each corpus file records the settings of one real example from a framework's own repository, with
its source path and commit. This test imports no framework: it checks the files against each other,
against index.yaml and README.md, and every setting against option lists generated once from the
pinned packages (tests/data/upstream/generate_field_lists.py). A setting the pinned version does not
know must be listed in the file's not_in_pinned, so the list is exact in both directions.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from ptsdk.spec.method import METHOD_NAMES

CORPUS = Path(__file__).resolve().parent / "data" / "upstream"
FRAMEWORKS = ("trl", "axolotl", "verl", "openrlhf")
KINDS = {"yaml", "hydra_overrides", "command_line", "python_kwargs"}
REQUIRED = ("framework", "source", "kind", "entrypoint", "method", "settings", "notes")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
# Axolotl sections that are pydantic models whose own fields are checked one level down.
AXOLOTL_CHECKED_SECTIONS = ("trl", "vllm")

FILES = sorted(p for fw in FRAMEWORKS for p in (CORPUS / fw).glob("*.yaml"))


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), path
    return doc


@cache
def index() -> dict[str, Any]:
    return yaml.safe_load((CORPUS / "index.yaml").read_text())["frameworks"]


@cache
def axolotl_fields() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """(schema fields and aliases incl. 'section.field', {plugin: the fields it adds})."""
    base: set[str] = set()
    plugins: dict[str, set[str]] = {}
    for line in (CORPUS / "axolotl_fields.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("plugin:"):
            plugin, field = line.removeprefix("plugin:").split()
            plugins.setdefault(plugin, set()).add(field)
        else:
            base.add(line.strip())
    return frozenset(base), {k: frozenset(v) for k, v in plugins.items()}


@cache
def verl_keys() -> frozenset[str]:
    lines = (CORPUS / "verl_keys.txt").read_text().splitlines()
    return frozenset(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))


@cache
def cli_options(framework: str) -> dict[str, dict[str, dict[str, Any]]]:
    return json.loads((CORPUS / f"{framework}_flags.json").read_text())["entrypoints"]


def _flag_problems(settings: dict[str, Any], options: dict[str, dict[str, Any]]) -> set[str]:
    """Settings that are no option of the parser, or whose value shape the option cannot take."""
    bad = set()
    for key, value in settings.items():
        opt = options.get(key)
        if opt is None:
            bad.add(key)
        elif opt.get("takes_value") is False and value is not True:
            bad.add(key)
        elif isinstance(value, list) and opt.get("nargs") is None:
            bad.add(key)
    return bad


def unknown_settings(doc: dict[str, Any]) -> set[str]:
    """The settings of a corpus file that the pinned framework version does not accept as written."""
    fw, settings = doc["framework"], doc["settings"]
    if fw == "axolotl":
        fields, by_plugin = axolotl_fields()
        for plugin in settings.get("plugins") or []:
            fields |= by_plugin.get(plugin, frozenset())
        bad = set()
        for key in settings:
            top, _, rest = key.partition(".")
            if top not in fields:
                bad.add(key)
            elif rest and top in AXOLOTL_CHECKED_SECTIONS and f"{top}.{rest.split('.')[0]}" not in fields:
                bad.add(key)
        return bad
    if fw == "verl":
        config = doc["hydra"]["config_name"].removesuffix(".yaml")
        # '+key=value' adds a key Hydra does not have: nothing to check it against
        return {k for k in settings if not k.startswith("+") and f"{config} {k}" not in verl_keys()}
    options = cli_options(fw).get(doc.get("options_from", doc["entrypoint"]))
    assert options is not None, f"no option list for {doc.get('options_from', doc['entrypoint'])}"
    return _flag_problems(settings, options)


def test_corpus_size() -> None:
    counts = {fw: len(list((CORPUS / fw).glob("*.yaml"))) for fw in FRAMEWORKS}
    assert sum(counts.values()) >= 30, counts
    assert all(n >= 8 for n in counts.values()), counts


def test_index_names_each_framework() -> None:
    assert set(index()) == set(FRAMEWORKS)
    for fw, entry in index().items():
        assert COMMIT.match(entry["commit"]), fw
        assert (CORPUS / entry["option_list"]).is_file(), fw


def test_option_lists_come_from_the_pinned_versions() -> None:
    pinned = {fw: str(entry["pinned_version"]) for fw, entry in index().items()}
    assert (CORPUS / "axolotl_fields.txt").read_text().startswith(f"# axolotl {pinned['axolotl']}:")
    assert (CORPUS / "verl_keys.txt").read_text().startswith(f"# verl {pinned['verl']}:")
    assert json.loads((CORPUS / "trl_flags.json").read_text())["trl_version"] == pinned["trl"]
    assert json.loads((CORPUS / "openrlhf_flags.json").read_text())["openrlhf_version"] == pinned["openrlhf"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_file_is_well_formed(path: Path) -> None:
    doc = _load(path)
    missing = [k for k in REQUIRED if k not in doc]
    assert not missing, f"missing {missing}"
    fw = doc["framework"]
    assert fw == path.parent.name
    src = doc["source"]
    assert src["repo"] == index()[fw]["repo"]
    assert COMMIT.match(src["commit"]), src["commit"]
    assert src["commit"] == index()[fw]["commit"], "commit differs from index.yaml"
    assert isinstance(src["path"], str) and src["path"] and not src["path"].startswith("/")
    assert doc["kind"] in KINDS
    assert {"yaml": "axolotl", "hydra_overrides": "verl"}.get(doc["kind"], fw) == fw
    assert isinstance(doc["entrypoint"], str) and doc["entrypoint"]
    assert doc["method"] in (*METHOD_NAMES, "other"), doc["method"]
    assert isinstance(doc["notes"], str) and len(doc["notes"]) > 20
    settings = doc["settings"]
    assert isinstance(settings, dict) and settings
    for key, value in settings.items():
        assert isinstance(key, str) and key and " " not in key, key
        assert not isinstance(value, dict) or not value, f"{key}: mappings are flattened to dotted keys"
        if doc["kind"] in ("command_line", "hydra_overrides") and value is not True:
            # command lines and Hydra overrides are text: values stay the strings the shell passes
            assert isinstance(value, (str, list)), key
    if fw == "verl":
        assert doc["hydra"]["config_name"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_settings_are_known_to_the_pinned_version(path: Path) -> None:
    doc = _load(path)
    recorded = set(doc.get("not_in_pinned") or [])
    assert recorded <= set(doc["settings"]), "not_in_pinned names a key that is no setting"
    assert unknown_settings(doc) == recorded


def test_readme_lists_every_file_and_commit() -> None:
    readme = (CORPUS / "README.md").read_text()
    for path in FILES:
        assert f"{path.parent.name}/{path.name}" in readme, path
    for entry in index().values():
        assert entry["commit"] in readme
