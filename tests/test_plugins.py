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
from ptsdk.plugins.manager import DEFAULT_PLUGINS, PluginError, collect_backends, get_backends, get_registry


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
    builtins = {name for name, origin in get_registry().origins.items() if origin.built_in}
    assert builtins == {"trl", "axolotl"}  # distributions/* installed beside ptsdk register too


def install_distribution(
    site: Path,
    source: str,
    *,
    dist: str = "ptsdk-acme",
    version: str = "1.0",
    plugin: str = "acme",
    module: str = "ptsdk_acme",
    target: str | None = None,
) -> None:
    """A real installed distribution (dist-info with a ``ptsdk`` entry point) in a folder on sys.path."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[ptsdk]\n{plugin} = {target or module}\n")


def install_dummy_distribution(site: Path, backend_name: str = "acme") -> None:
    install_distribution(
        site,
        f'''
        from ptsdk.plugins import Backend, Plan, hookimpl
        from ptsdk.matrix.capability import Capability, Verified

        class Acme(Backend):
            name = "{backend_name}"
            framework = "acme"
            capabilities = (
                Capability("method", "ppo", Verified.declared), Capability("adapter", "full", Verified.declared)
            )

            def translate(self, job):
                return Plan(backend=self.name, files=[], commands=[], native_config="")

        @hookimpl
        def ptsdk_register_backends(register):
            register(Acme)
    ''',
    )


def run_ptsdk(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run(
        [sys.executable, "-m", "ptsdk", *args], capture_output=True, text=True, env=full_env, timeout=60
    )


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

    with pytest.raises(PtsdkError, match="no such backend; installed backends: ") as err:
        get_backend("nemo")
    # the built-ins, and any distributions/* installed beside ptsdk, sorted
    listed = str(err.value).split("installed backends: ")[1].split(", ")
    assert listed == sorted(listed) and {"axolotl", "openrlhf", "trl", "verl"} <= set(listed)


def test_registry_is_cached_per_plugin_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    from ptsdk.plugins.manager import clear_registry_cache, get_backend, get_registry

    monkeypatch.delenv("PTSDK_DISABLE_PLUGINS", raising=False)
    first = get_registry()
    assert get_registry() is first
    assert get_backend("trl") is first.backends["trl"]
    assert first.origins["trl"].distribution == "ptsdk" and first.origins["trl"].built_in
    monkeypatch.setenv("PTSDK_DISABLE_PLUGINS", "verl")
    assert "verl" not in get_registry().backends
    monkeypatch.delenv("PTSDK_DISABLE_PLUGINS")
    assert get_registry() is first
    clear_registry_cache()
    assert get_registry() is not first


def test_get_backends_returns_a_copy() -> None:
    get_backends().clear()
    assert "trl" in get_backends()


_BACKEND = """
    from ptsdk.plugins import Backend, Plan, hookimpl

    class Broken(Backend):
        name = "broken"
        framework = "broken"

        def translate(self, job):
            return Plan(backend=self.name, files=[], commands=[], native_config="")
"""

# name -> (module source, entry-point target or None, what the error says)
BROKEN_PLUGINS: dict[str, tuple[str, str | None, str]] = {
    "missing_import": ("import ptsdk_no_such_module\n", None, "failed to import: ModuleNotFoundError"),
    "syntax_error": ("def oops(:\n    pass\n", None, "failed to import: SyntaxError"),
    "raises_at_import": (
        "raise RuntimeError('no licence key')\n",
        None,
        "failed to import: RuntimeError: no licence key",
    ),
    "exits_at_import": ("import sys\nsys.exit(3)\n", None, "failed to import: SystemExit: 3"),
    "missing_attribute": (_BACKEND, "ptsdk_broken:nope", "failed to import: AttributeError"),
    "unknown_hook": (
        _BACKEND + "\n    @hookimpl\n    def ptsdk_register_backend(register):\n        register(Broken)\n",
        None,
        "unknown hook 'ptsdk_register_backend'; did you mean 'ptsdk_register_backends'?",
    ),
    "bad_signature": (
        _BACKEND + "\n    @hookimpl\n    def ptsdk_register_backends(regster):\n        regster(Broken)\n",
        None,
        "invalid hook implementation",
    ),
    "no_hooks": (
        _BACKEND + "\n    def ptsdk_register_backends(register):\n        register(Broken)\n",
        None,
        "implements no ptsdk hook",
    ),
    "hook_raises": (
        _BACKEND + "\n    @hookimpl\n    def ptsdk_register_backends(register):\n"
        "        raise ValueError('cannot reach licence server')\n",
        None,
        "ptsdk_register_backends raised ValueError: cannot reach licence server",
    ),
    "not_a_backend": (
        _BACKEND + "\n    @hookimpl\n    def ptsdk_register_backends(register):\n        register(dict)\n",
        None,
        "not a ptsdk Backend subclass",
    ),
    "no_name": (
        _BACKEND + "\n    del Broken.name\n\n    @hookimpl\n    def ptsdk_register_backends(register):\n"
        "        register(Broken)\n",
        None,
        "needs a `name` that is an identifier",
    ),
    "bad_name": (
        _BACKEND + "\n    Broken.name = 'my-backend'\n\n    @hookimpl\n    def ptsdk_register_backends(register):\n"
        "        register(Broken)\n",
        None,
        "needs a `name` that is an identifier (it has 'my-backend')",
    ),
    "abstract": (
        "from ptsdk.plugins import Backend, hookimpl\n\n"
        "class Broken(Backend):\n    name = 'broken'\n    framework = 'x'\n\n"
        "@hookimpl\ndef ptsdk_register_backends(register):\n    register(Broken)\n",
        None,
        "does not implement translate",
    ),
    "duplicate_name": (
        _BACKEND + "\n    Broken.name = 'trl'\n\n    @hookimpl\n    def ptsdk_register_backends(register):\n"
        "        register(Broken)\n",
        None,
        "backend name 'trl' is registered twice: by plugin 'ptsdk.backends.trl' (ptsdk ",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_PLUGINS))
def test_broken_plugin_is_a_clean_error(tmp_path: Path, case: str) -> None:
    source, target, expected = BROKEN_PLUGINS[case]
    install_distribution(
        tmp_path, source, dist="ptsdk-broken", version="2.3", plugin="broken", module="ptsdk_broken", target=target
    )
    proc = run_ptsdk(tmp_path, "matrix", "--format", "json")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: plugin 'broken' (ptsdk-broken 2.3): "), proc.stderr
    assert expected in proc.stderr
    assert "PTSDK_DISABLE_PLUGINS=broken" in proc.stderr and "pip uninstall ptsdk-broken" in proc.stderr
    # ...and the way out it names works.
    proc = run_ptsdk(tmp_path, "matrix", "--format", "json", PTSDK_DISABLE_PLUGINS="broken")
    assert proc.returncode == 0, proc.stderr
    assert "broken" not in json.loads(proc.stdout)["backends"]


def test_two_distributions_with_one_plugin_name(tmp_path: Path) -> None:
    install_dummy_distribution(tmp_path)
    install_distribution(tmp_path, _BACKEND, dist="acme-fork", version="0.2", plugin="acme", module="acme_fork")
    proc = run_ptsdk(tmp_path, "matrix")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "the plugin name 'acme' is also used by" in proc.stderr
    assert "ptsdk-acme 1.0" in proc.stderr and "acme-fork 0.2" in proc.stderr


def test_plugin_hook_runs_once_per_command(tmp_path: Path) -> None:
    site, log = tmp_path / "site", tmp_path / "hook.log"
    site.mkdir()
    install_distribution(
        site,
        textwrap.dedent(_BACKEND).replace("broken", "counted")
        + textwrap.dedent("""
        import os

        @hookimpl
        def ptsdk_register_backends(register):
            with open(os.environ["PTSDK_TEST_HOOK_LOG"], "a") as f:
                f.write("called\\n")
            register(Broken)
    """),
        dist="ptsdk-counted",
        plugin="counted",
        module="ptsdk_counted",
    )
    job = tmp_path / "job.yaml"
    job.write_text("method: {name: sft}\nmodel: {name_or_path: org/model}\ndata: {train: {path: org/dataset}}\n")
    # validate --backend looks backends up several times (job's backend_options, the backend, the matrix check).
    proc = run_ptsdk(site, "validate", str(job), "--backend", "trl", PTSDK_TEST_HOOK_LOG=str(log))
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().splitlines() == ["called"]


def test_backends_names_the_distribution(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install_dummy_distribution(site)
    proc = run_ptsdk(site, "backends", "--format", "json", PTSDK_HOME=str(tmp_path / "home"))
    assert proc.returncode == 0, proc.stderr
    rows = {row["backend"]: row for row in json.loads(proc.stdout)}
    acme, trl = rows["acme"], rows["trl"]
    assert (acme["plugin"], acme["distribution"], acme["distribution_version"]) == ("acme", "ptsdk-acme", "1.0")
    import ptsdk

    assert (trl["plugin"], trl["distribution"], trl["distribution_version"]) == (
        "ptsdk.backends.trl",
        "ptsdk",
        ptsdk.__version__,
    )
