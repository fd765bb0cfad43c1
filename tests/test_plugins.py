"""Plugin loading: built-ins, entry points of an installed package, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ptsdk.errors import PtsdkError
from ptsdk.plugins import Backend, Plan, get_plugin_manager, hookimpl
from ptsdk.plugins.manager import DEFAULT_PLUGINS, PluginError, collect_backends, get_backends


class Dummy(Backend):
    name = "dummy"
    framework = "dummy-framework"

    def translate(self, job):  # type: ignore[no-untyped-def]
        return Plan(backend=self.name, files=[], commands=[], native_config="")


class DummyPlugin:
    @hookimpl
    def ptsdk_register_backends(self, register):  # type: ignore[no-untyped-def]
        register(Dummy)


def test_builtin_backends_are_default_plugins() -> None:
    pm = get_plugin_manager(load_entry_points=False)
    assert {pm.get_name(p) for p in pm.get_plugins()} == set(DEFAULT_PLUGINS)
    assert set(get_backends(pm)) == {"trl", "axolotl", "verl", "openrlhf"}


def test_registered_plugin_adds_backend() -> None:
    pm = get_plugin_manager(load_entry_points=False)
    plugin = DummyPlugin()
    pm.register(plugin, name="dummy-plugin")
    try:
        assert collect_backends(pm)["dummy"] is Dummy
    finally:
        pm.unregister(plugin)
    assert "dummy" not in collect_backends(pm)


def test_duplicate_name_refused() -> None:
    class Twin(Dummy):
        name = "trl"

    class TwinPlugin:
        @hookimpl
        def ptsdk_register_backends(self, register):  # type: ignore[no-untyped-def]
            register(Twin)

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(TwinPlugin(), name="twin")
    with pytest.raises(PluginError, match="'trl' is registered twice"):
        collect_backends(pm)


def test_non_backend_class_refused() -> None:
    class Bad:
        @hookimpl
        def ptsdk_register_backends(self, register):  # type: ignore[no-untyped-def]
            register(dict)

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(Bad(), name="bad")
    with pytest.raises(PluginError, match="not a ptsdk Backend subclass"):
        collect_backends(pm)


def test_misspelled_hook_fails_loudly() -> None:
    class Typo:
        @hookimpl
        def ptsdk_register_backend(self, register):  # type: ignore[no-untyped-def]
            pass

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(Typo(), name="typo")
    with pytest.raises(Exception, match="unknown hook"):
        pm.check_pending()


def test_disable_builtin_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTSDK_DISABLE_PLUGINS", "ptsdk.backends.verl,openrlhf")
    assert set(get_backends()) == {"trl", "axolotl"}


def install_dummy_distribution(site: Path, backend_name: str = "acme") -> None:
    """A real installed distribution (dist-info with an entry point) in a folder on sys.path."""
    (site / "ptsdk_acme.py").write_text(textwrap.dedent(f'''
        from ptsdk.plugins import Backend, Plan, hookimpl
        from ptsdk.matrix.capability import Capability, Verified

        class Acme(Backend):
            name = "{backend_name}"
            framework = "acme"
            capabilities = (Capability("method", "ppo", Verified.declared), Capability("adapter", "full", Verified.declared))

            def translate(self, job):
                return Plan(backend=self.name, files=[], commands=[], native_config="")

        @hookimpl
        def ptsdk_register_backends(register):
            register(Acme)
    '''))
    dist = site / "ptsdk_acme-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ptsdk-acme\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ptsdk]\nacme = ptsdk_acme\n")


def run_ptsdk(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run([sys.executable, "-m", "ptsdk", *args], capture_output=True, text=True, env=full_env, timeout=60)


def test_entry_point_plugin_from_installed_package(tmp_path: Path) -> None:
    install_dummy_distribution(tmp_path)
    proc = run_ptsdk(tmp_path, "matrix", "--format", "json", "--method", "ppo")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert "acme" in data["backends"]
    (row,) = [r for r in data["capabilities"] if r["name"] == "ppo"]
    assert row["backends"]["acme"]["verified"] == "declared"
    assert row["backends"]["trl"] is None


def test_entry_point_plugin_can_be_blocked(tmp_path: Path) -> None:
    install_dummy_distribution(tmp_path)
    proc = run_ptsdk(tmp_path, "matrix", "--format", "json", PTSDK_DISABLE_PLUGINS="acme")
    assert "acme" not in json.loads(proc.stdout)["backends"]
    proc = run_ptsdk(tmp_path, "matrix", "--format", "json", PTSDK_LOAD_PLUGINS="")
    assert "acme" not in json.loads(proc.stdout)["backends"]


def test_entry_point_duplicate_name_is_a_clear_error(tmp_path: Path) -> None:
    install_dummy_distribution(tmp_path, backend_name="trl")
    proc = run_ptsdk(tmp_path, "matrix")
    assert proc.returncode == 2
    assert "backend name 'trl' is registered twice" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_backend_name() -> None:
    from ptsdk.plugins.manager import get_backend

    with pytest.raises(PtsdkError, match="no such backend; installed backends: axolotl, openrlhf, trl, verl"):
        get_backend("nemo")
