"""Where a backend lives: env var, config file, managed environment, this interpreter; containers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import EXAMPLES
from ptsdk.envbuild import (
    INSTALLER_ENV,
    Installer,
    Untranslatable,
    built_from,
    choose_installer,
    create_env,
    effective_pip_config,
    find_uv,
    install_commands,
    is_stale,
    list_envs,
    remove_env,
    uv_install,
)
from ptsdk.envs import READY_MARKER, resolve_env
from ptsdk.errors import BackendUnavailable, PtsdkError, RunFailed
from ptsdk.plugins.backend import Backend, Plan
from ptsdk.plugins.environment import (
    EnvironmentSpec,
    InstallStep,
    default_environment,
    read_requirements,
    requirements_file,
)
from ptsdk.plugins.manager import get_backend, get_backends


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PTSDK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PTSDK_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.delenv(INSTALLER_ENV, raising=False)
    for name in get_backends():
        monkeypatch.delenv(f"PTSDK_{name.upper()}_PYTHON", raising=False)
    return tmp_path


def test_resolution_order(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    verl = get_backends()["verl"]
    assert resolve_env(verl).source == "missing"
    managed = home / "home" / "envs" / "verl"
    (managed / "bin").mkdir(parents=True)
    assert resolve_env(verl).source == "missing"  # no ready marker: a half-built env is never used
    (managed / READY_MARKER).write_text("{}")
    assert resolve_env(verl).source == "managed"
    (home / "config.yaml").write_text(f"backends:\n  verl: {{python: {sys.executable}}}\n")
    assert resolve_env(verl).python == sys.executable
    monkeypatch.setenv("PTSDK_VERL_PYTHON", "/opt/verl/bin/python")
    assert resolve_env(verl).source == "$PTSDK_VERL_PYTHON"


def test_versions_are_read_without_importing(home: Path) -> None:
    (home / "config.yaml").write_text(f"backends:\n  verl: {{python: {sys.executable}}}\n")
    env = resolve_env(get_backends()["verl"])
    versions = env.versions(("pydantic",))
    assert versions["verl"] is None and versions["pydantic"]


def test_a_venvs_versions_are_read_from_its_site_packages_without_starting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A venv that sees only its own site-packages is read in ptsdk's process (no interpreter start before each
    launch); one that also sees the system's is asked, since what it imports may come from there."""
    from ptsdk.envs import BackendEnv

    venv = tmp_path / "venv"
    dist = venv / "lib" / "python3.11" / "site-packages" / "some_framework-1.2.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: Some_Framework\nVersion: 1.2.3\n")
    (venv / "bin").mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    started: list[object] = []

    def asked(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        started.append(argv)
        return subprocess.CompletedProcess(argv, 0, json.dumps(dict.fromkeys(argv[3:])))

    monkeypatch.setattr(subprocess, "run", asked)
    env = BackendEnv("x", "some-framework", str(venv / "bin" / "python"), "test")
    assert env.versions(("torch",)) == {"some-framework": "1.2.3", "torch": None, "transformers": None}
    assert started == []
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "elsewhere"))  # packages from there too (seen on a GPU box)
    BackendEnv("x", "some-framework", str(venv / "bin" / "python"), "test").versions()
    assert len(started) == 1
    monkeypatch.delenv("PYTHONPATH")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = true\n")
    BackendEnv("x", "some-framework", str(venv / "bin" / "python"), "test").versions()
    assert len(started) == 2


def test_missing_backend_says_how_to_get_it(home: Path) -> None:
    env = resolve_env(get_backends()["verl"])
    with pytest.raises(BackendUnavailable) as info:
        env.require("pip install verl")
    assert "ptsdk env create verl" in info.value.render() and "pip install verl" in info.value.render()


def test_bad_config_file_is_a_clear_error(home: Path) -> None:
    (home / "config.yaml").write_text("backends: [\n")
    with pytest.raises(PtsdkError, match="not valid YAML"):
        resolve_env(get_backends()["verl"])


def test_translate_emits_container_command(home: Path, ptsdk, tmp_path: Path) -> None:
    (home / "config.yaml").write_text(
        "backends:\n  trl: {container: {image: 'ghcr.io/acme/trl:1.16', runtime: apptainer}}\n"
    )
    job = tmp_path / "job.yaml"
    job.write_text(
        "method: {name: sft}\nmodel: {name_or_path: org/m}\n"
        f"data: {{train: {{path: {EXAMPLES}/data/sft_train.jsonl}}}}\n"
    )
    r = ptsdk("translate", str(job), "--backend", "trl", "--no-native-check", "--out", str(tmp_path / "out"))
    assert r.code == 0, r.err
    script = (tmp_path / "out" / "command.sh").read_text()
    assert 'apptainer exec --nv --bind "$PWD":"$PWD"' in script
    assert f"--bind {EXAMPLES}/data/sft_train.jsonl:{EXAMPLES}/data/sft_train.jsonl:ro" in script
    assert "ghcr.io/acme/trl:1.16 python train_trl.py --config trl_config.yaml" in script
    r = ptsdk("translate", str(job), "--backend", "trl")
    assert r.code == 2 and "runs in container" in r.err


def test_failed_build_leaves_nothing(home: Path) -> None:
    # A requirement set that cannot install: the build fails and the folder is gone.
    with pytest.raises(PtsdkError):
        create_env(get_backend("trl"), python="/nonexistent/python", say=lambda s: None)
    assert not (home / "home" / "envs" / "trl").exists()
    assert list_envs() == []


def test_default_environment_installs_torch_first_then_the_pins() -> None:
    for name in ("trl", "axolotl", "verl"):
        cls = get_backend(name)
        path = requirements_file(cls)
        assert path is not None and path.parent.name == name
        reqs = read_requirements(path)
        assert "torch==2.13.0" in reqs and all("==" in r and not r.startswith("#") for r in reqs)
        spec = cls.environment()
        assert spec == default_environment(cls)
        first, rest = spec.steps
        assert first.packages == ("torch==2.13.0",) and "first" in first.label
        assert not any(r.lower().startswith("torch==") for r in rest.packages)
        assert sorted((*first.packages, *rest.packages)) == sorted(reqs)
        assert first.pip_args == rest.pip_args == () and first.env == rest.env == ()
    from ptsdk.backends.declared import DeclaredBackend

    class Unpinned(DeclaredBackend):  # a backend shipping no requirements.txt
        name = "unpinned"
        framework = "unpinned"

    with pytest.raises(PtsdkError, match="no known-good requirement set") as info:
        Unpinned.environment()
    assert "PTSDK_UNPINNED_PYTHON" in info.value.message


def test_spec_sha_covers_packages_args_and_env_not_labels() -> None:
    base = EnvironmentSpec((InstallStep("a", ("x==1",)), InstallStep("b", ("y==2",), ("--no-deps",), (("K", "1"),))))
    same = EnvironmentSpec((InstallStep("other label", ("x==1",)), base.steps[1]))
    assert base.sha == same.sha
    # env given as a mapping is stored as sorted pairs: the step still hashes and compares by value
    as_mapping = InstallStep("b", ("y==2",), ("--no-deps",), {"K": "1"})  # type: ignore[arg-type]
    assert as_mapping == base.steps[1] and hash(as_mapping) == hash(base.steps[1]) and as_mapping.environ == {"K": "1"}
    for changed in (
        EnvironmentSpec((InstallStep("a", ("x==1.1",)), base.steps[1])),
        EnvironmentSpec((base.steps[0], InstallStep("b", ("y==2",), (), (("K", "1"),)))),
        EnvironmentSpec((base.steps[0], InstallStep("b", ("y==2",), ("--no-deps",), (("K", "0"),)))),
        EnvironmentSpec((base.steps[1], base.steps[0])),
    ):
        assert changed.sha != base.sha


def test_a_third_party_backend_ships_its_own_requirements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "site" / "acme_ptsdk_backend"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "backend.py").write_text(
        textwrap.dedent("""
        from ptsdk.plugins.backend import Backend

        class AcmeBackend(Backend):
            name = "acme"
            framework = "acme-train"

            def translate(self, job):
                raise NotImplementedError
    """)
    )
    (pkg / "requirements.txt").write_text(
        "# acme's known-good set\n\nacme-train==3.1  # the framework\nTorch==2.13.0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for mod in ("acme_ptsdk_backend", "acme_ptsdk_backend.backend"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    from acme_ptsdk_backend.backend import AcmeBackend  # type: ignore[import-not-found]

    assert requirements_file(AcmeBackend) == pkg / "requirements.txt"
    spec = AcmeBackend.environment()
    assert [s.packages for s in spec.steps] == [("Torch==2.13.0",), ("acme-train==3.1",)]
    # A backend class in a package without pins gets the same advice as a built-in one.
    (pkg / "requirements.txt").unlink()
    with pytest.raises(PtsdkError, match="PTSDK_ACME_PYTHON"):
        AcmeBackend.environment()
    for mod in ("acme_ptsdk_backend", "acme_ptsdk_backend.backend"):
        sys.modules.pop(mod, None)


# A PEP 517 build backend in the package's own tree: builds a wheel with nothing but the standard
# library (no setuptools, no network), and writes what the build saw of $PTSDK_DEMO_FLAG into it.
_BUILD_BACKEND = """
import base64, hashlib, os, zipfile

NAME, VERSION, REQUIRES = {name!r}, "1.0", {requires!r}

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    dist = NAME.replace("-", "_")
    files = {{
        dist + "/__init__.py": "FLAG = %r\\n" % os.environ.get("PTSDK_DEMO_FLAG"),
        dist + "-1.0.dist-info/METADATA": "Metadata-Version: 2.1\\nName: %s\\nVersion: 1.0\\n%s" % (
            NAME, "".join("Requires-Dist: %s\\n" % r for r in REQUIRES)),
        dist + "-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\\nGenerator: demo\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
        ),
    }}
    record = dist + "-1.0.dist-info/RECORD"
    wheel = "%s-1.0-py3-none-any.whl" % dist
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as zf:
        lines = []
        for path, text in files.items():
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
            lines.append("%s,sha256=%s,%d" % (path, digest, len(text.encode())))
            zf.writestr(path, text)
        zf.writestr(record, "\\n".join(lines + [record + ",,"]) + "\\n")
    return wheel
"""


def _demo_package(root: Path, name: str, requires: tuple[str, ...] = ()) -> Path:
    src = root / name
    src.mkdir(parents=True)
    (src / "pyproject.toml").write_text(
        # dependencies are dynamic: the built wheel says them (uv would otherwise trust an empty static list)
        f'[project]\nname = "{name}"\nversion = "1.0"\ndynamic = ["dependencies"]\n\n'
        '[build-system]\nrequires = []\nbuild-backend = "demo_build"\nbackend-path = ["."]\n'
    )
    (src / "demo_build.py").write_text(_BUILD_BACKEND.format(name=name, requires=list(requires)))
    return src


@pytest.mark.envbuild  # two real venvs: ~20 s on an idle machine, 30-40 s under load (each installer)
@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_a_real_build_runs_the_declared_steps(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installer: str
) -> None:
    if installer == "uv" and find_uv() is None:
        pytest.skip("uv is not installed (pip install uv)")
    monkeypatch.setenv(INSTALLER_ENV, installer)
    a = _demo_package(tmp_path / "pkgs", "ptsdk-demo-a", ("ptsdk-demo-missing>=1",))
    b = _demo_package(tmp_path / "pkgs", "ptsdk-demo-b")
    offline = ("--no-index", "--no-build-isolation")
    good = EnvironmentSpec(
        (
            InstallStep("install b", (str(b),), offline),
            InstallStep(
                "install a without its deps", (str(a),), (*offline, "--no-deps"), (("PTSDK_DEMO_FLAG", "seen"),)
            ),
        )
    )
    # Installing a with its dependencies cannot succeed: ptsdk-demo-missing exists nowhere.
    bad = EnvironmentSpec((good.steps[0], InstallStep("install a with its deps", (str(a),), offline)))

    class DemoBackend(Backend):
        name = "demo"
        framework = "ptsdk-demo-a"
        spec: ClassVar[EnvironmentSpec] = good

        @classmethod
        def environment(cls) -> EnvironmentSpec:
            return cls.spec

        def translate(self, job: object) -> Plan:  # type: ignore[override]
            raise NotImplementedError

    said: list[str] = []
    target = create_env(DemoBackend, say=said.append)
    assert target == home / "home" / "envs" / "demo"
    assert f"({installer}, " in said[1] and f"({installer}, " in said[2]
    assert f"installed with {installer}" in said[-1]
    assert [s.split(" (")[0] for s in said[:3]] == [
        "[1/3] demo: create venv",
        "[2/3] demo: install b",
        "[3/3] demo: install a without its deps",
    ]
    out = subprocess.run(
        [
            str(target / "bin" / "python"),
            "-c",
            "import ptsdk_demo_a, ptsdk_demo_b; print(ptsdk_demo_a.FLAG, ptsdk_demo_b.FLAG)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["seen", "None"]  # the step's env reached a's build and only a's
    marker = json.loads((target / READY_MARKER).read_text())
    assert marker["requirements_sha"] == good.sha == built_from(target)
    assert marker["installer"] == installer and marker["installer_version"][0].isdigit()
    assert sorted(p.split(" @ ")[0].replace("_", "-") for p in marker["packages"] if "demo" in p) == [
        "ptsdk-demo-a",
        "ptsdk-demo-b",
    ]
    assert resolve_env(DemoBackend).source == "managed" and not is_stale(DemoBackend)

    said.clear()
    assert create_env(DemoBackend, say=said.append) == target and "already ready" in said[0]

    # Another spec: the ready env is stale, the rebuild fails at its last step, nothing stays behind.
    DemoBackend.spec = bad
    assert is_stale(DemoBackend)
    with pytest.raises(RunFailed, match="'install a with its deps' failed"):
        create_env(DemoBackend, say=said.append)
    assert any("built from other requirements" in s for s in said)
    assert not target.exists() and list_envs() == [] and resolve_env(DemoBackend).source == "missing"
    assert "ptsdk-demo-missing" in (home / "home" / "envs" / "demo.build.log").read_text()


def test_remove_missing_env(home: Path) -> None:
    with pytest.raises(PtsdkError, match="no managed environment"):
        remove_env("trl")


def test_env_cli_list(home: Path, ptsdk) -> None:
    managed = home / "home" / "envs" / "trl"
    managed.mkdir(parents=True)
    r = ptsdk("env", "list")
    assert "incomplete" in r.out
    (managed / READY_MARKER).write_text(json.dumps({}))
    assert "ready" in ptsdk("env", "list").out
    assert ptsdk("env", "remove", "trl").code == 0 and not managed.exists()


def test_create_reuses_a_ready_env_only_when_pins_match(home: Path) -> None:
    trl = get_backend("trl")
    target = home / "home" / "envs" / "trl"
    target.mkdir(parents=True)
    (target / READY_MARKER).write_text(json.dumps({"requirements_sha": trl.environment().sha}))
    said: list[str] = []
    assert create_env(trl, say=said.append) == target
    assert "already ready" in said[0] and not is_stale(trl)
    # Built from other pins: rebuilt (here the rebuild fails at once, and nothing half-made stays).
    (target / READY_MARKER).write_text(json.dumps({"requirements_sha": "old"}))
    assert is_stale(trl)
    with pytest.raises(PtsdkError):
        create_env(trl, python="/nonexistent/python", say=said.append)
    assert any("built from other requirements" in s for s in said) and not target.exists()


def test_backends_flags_a_stale_managed_env(home: Path, ptsdk) -> None:
    target = home / "home" / "envs" / "trl"
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "python").symlink_to(sys.executable)
    (target / READY_MARKER).write_text(json.dumps({"requirements_sha": "old"}))
    rows = {r["backend"]: r for r in json.loads(ptsdk("backends", "--format", "json").out)}
    assert rows["trl"]["source"] == "managed"
    assert rows["trl"]["status"] == "stale: pins changed, run ptsdk env create trl"


# --- which installer, and uv doing what pip would ---

# `pip config list` on a machine whose pip finds torch's CPU build in a folder, reads two more local indexes,
# caps torch with a constraint file and trusts a CA bundle; PIP_* variables are listed too (as :env:).
MACHINE_PIP_CONFIG = """\
:env:.find-links='/ignored/listed/env'
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/opt/wheels'
global.timeout='60'
install.timeout='90.5'
download.index-url='https://download.only/simple'
"""


def _pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def test_pip_configuration_becomes_uv_flags() -> None:
    environ = {"PIP_FIND_LINKS": "/opt/wheels /more/wheels", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "HOME": "/x"}
    config = effective_pip_config(MACHINE_PIP_CONFIG, environ)
    assert config == {
        "cert": "/etc/ssl/certs/ca-certificates.crt",
        "constraint": "/etc/xdg/pip/constraints.txt",
        "extra-index-url": "file:///opt/pypi/simple file:///opt/pypi-more/simple",
        "find-links": "/opt/wheels /more/wheels",  # a PIP_* variable overrides the files, as in pip
        "timeout": "90.5",  # [install] overrides [global]; [download] is another command's
        "disable-pip-version-check": "1",
    }
    # This machine's pip reads five sources (PyPI, two mirrors, two wheel folders); uv would take a version's wheel
    # from the first that has it (here the py310 build of multiprocess where pip takes the py311 one): pip builds.
    with pytest.raises(Untranslatable, match="5 package sources"):
        uv_install(("uv",), "/venv/bin/python", ("--no-deps",), ("torch==2.13.0",), config)
    # One source (the wheel folders and the mirrors as the step's --no-index turns them off): uv, with pip's meaning.
    one = {**config, "find-links": "/opt/wheels"}
    argv, env = uv_install(("uv",), "/venv/bin/python", ("--no-deps", "--no-index"), ("torch==2.13.0",), one)
    assert argv[:8] == ["uv", "pip", "install", "--python", "/venv/bin/python", "--no-config", "--index-strategy"] + [
        "unsafe-best-match"
    ]
    assert _pairs(argv, "--find-links") == ["/opt/wheels"] and "--no-index" in argv
    assert _pairs(argv, "--extra-index-url") == ["file:///opt/pypi/simple", "file:///opt/pypi-more/simple"]
    assert _pairs(argv, "--constraint") == _pairs(argv, "--build-constraint") == ["/etc/xdg/pip/constraints.txt"]
    assert "--index-url" not in argv  # pip's default index, PyPI, is uv's too
    assert "--no-deps" in argv and "--compile-bytecode" in argv and argv[-1] == "torch==2.13.0"
    assert env == {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "UV_HTTP_TIMEOUT": "90"}


def test_step_arguments_keep_their_pip_meaning() -> None:
    config = {"index-url": "https://mirror/simple", "no-index": "false", "pre": "no"}
    argv, _ = uv_install(("uv",), "py", ("-i", "https://other/simple", "--no-build-isolation", "--pre"), ("x",), config)
    assert _pairs(argv, "--index-url") == ["https://other/simple"]  # the command line replaces a single value
    assert "--no-index" not in argv  # false in the configuration
    assert "--no-build-isolation" in argv and _pairs(argv, "--prerelease") == ["allow"]
    with pytest.raises(Untranslatable, match="2 package sources"):  # -f adds a second source to the index
        uv_install(("uv",), "py", ("-f/extra",), ("x",), config)
    argv, _ = uv_install(("uv",), "py", ("-f/extra", "--no-index"), ("x",), {"extra-index-url": "https://m/simple"})
    assert _pairs(argv, "--find-links") == ["/extra"] and "--no-index" in argv  # one source: the folder
    argv, _ = uv_install(("uv",), "py", ("--disable-pip-version-check",), ("x",), {"no-compile": "yes"})
    assert "--compile-bytecode" not in argv  # pip told not to byte-compile: nor does uv
    for args, config in (
        (("--prefer-binary",), {}),
        (("--index-url",), {}),
        (("-qq",), {}),
        (("--no-deps=1",), {}),
        ((), {"prefer-binary": "true"}),
        ((), {"upgrade-strategy": "eager"}),
    ):
        with pytest.raises(Untranslatable):
            uv_install(("uv",), "py", args, ("x",), config)


def _spec(*pip_args: str) -> EnvironmentSpec:
    return EnvironmentSpec((InstallStep("install x", ("x==1",), pip_args),))


def test_uv_when_present_else_pip_and_the_variable_forces_one() -> None:
    spec = _spec("--no-deps")
    present, absent = (lambda: ("/bin/uv",)), (lambda: None)
    assert choose_installer(spec, {}, present) == Installer("uv", "found", ("/bin/uv",))
    assert choose_installer(spec, {INSTALLER_ENV: ""}, absent) == Installer("pip", "uv not found")
    assert choose_installer(spec, {INSTALLER_ENV: "pip"}, present).name == "pip"
    assert choose_installer(spec, {INSTALLER_ENV: "UV"}, present).forced
    # A step uv cannot run exactly as pip would: pip builds it, or, with uv forced, a clear error.
    assert choose_installer(_spec("--prefer-binary"), {}, present).name == "pip"
    with pytest.raises(PtsdkError, match="--prefer-binary"):
        choose_installer(_spec("--prefer-binary"), {INSTALLER_ENV: "uv"}, present)
    with pytest.raises(PtsdkError, match="use pip or uv"):
        choose_installer(spec, {INSTALLER_ENV: "conda"}, present)


def test_find_uv_on_path_then_in_this_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    uv = tmp_path / "uv"
    uv.write_text("#!/bin/sh\n")
    uv.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_uv() == (str(uv),)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "uv" else real(name, *a))
    assert find_uv() == (sys.executable, "-m", "uv")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uv" else real(name, *a))
    assert find_uv() is None


def test_forcing_an_absent_uv_is_exit_2_and_keeps_the_env(home: Path, ptsdk, monkeypatch: pytest.MonkeyPatch) -> None:
    from ptsdk import envbuild

    monkeypatch.setattr(envbuild, "find_uv", lambda: None)
    monkeypatch.setenv(INSTALLER_ENV, "uv")
    target = home / "home" / "envs" / "trl"
    target.mkdir(parents=True)
    (target / READY_MARKER).write_text(json.dumps({"requirements_sha": "old"}))
    r = ptsdk("env", "create", "trl")
    assert r.code == 2 and "PTSDK_INSTALLER=uv" in r.err and "pip install uv" in r.err
    assert (target / READY_MARKER).exists()  # nothing was removed for a build that could not start


def test_pip_configuration_read_from_the_venv_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # sys.executable stands in for the new venv's python: its pip reads the machine's files and this one.
    conf = tmp_path / "pip.conf"
    # One package source (uv installs as pip would only then): the folder, with the indexes turned off.
    conf.write_text("[global]\nfind-links = /from/the/file\nno-index = true\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)  # it would override the file, as in pip
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "file:///from/the/env")
    uv = Installer("uv", "found", ("uv",))
    steps = [InstallStep("a", ("x==1",)), InstallStep("b", ("y==2",), ("--no-deps",), (("PIP_PRE", "1"),))]
    installer, commands = install_commands(uv, sys.executable, steps)
    assert installer == uv
    (a, _), (b, _) = commands
    assert "/from/the/file" in _pairs(a, "--find-links") and "file:///from/the/env" in _pairs(a, "--extra-index-url")
    assert "--no-index" in a and "--no-index" in b
    assert "--prerelease" not in a and "--prerelease" in b and "--no-deps" in b  # a step's own PIP_* variables count
    assert "--compile-bytecode" in a and "--compile-bytecode" in b  # each step compiles what it installs, as pip
    # A configuration uv cannot honour exactly: pip builds, or with uv forced, a clear error.
    conf.write_text("[install]\nprefer-binary = true\n")
    installer, commands = install_commands(uv, sys.executable, steps)
    assert installer.name == "pip" and "prefer-binary" in installer.reason
    assert commands[1][0] == [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-deps",
        "y==2",
    ]
    with pytest.raises(PtsdkError, match="prefer-binary"):
        install_commands(Installer("uv", "PTSDK_INSTALLER=uv", ("uv",), forced=True), sys.executable, steps)


def test_a_step_uv_fails_on_is_done_again_with_pip(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """uv chosen by default (not forced): a step it fails on is retried with the venv's pip; the marker says which."""
    import ptsdk.envbuild as envbuild

    uv = envbuild.Installer("uv", "found on PATH", ("uv",))
    monkeypatch.setattr(envbuild, "choose_installer", lambda spec: uv)
    monkeypatch.setattr(envbuild, "install_commands", lambda inst, py, steps: (inst, [(["false"], {}) for _ in steps]))
    monkeypatch.setattr(envbuild, "pip_install", lambda py, args, packages: [py, "-c", "print('pip did it')"])

    class Demo(Backend):
        name = "demo"
        framework = "ptsdk-demo"

        @classmethod
        def environment(cls) -> EnvironmentSpec:
            return EnvironmentSpec((InstallStep("install x", ("x",)),))

        def translate(self, job: object) -> Plan:  # type: ignore[override]
            raise NotImplementedError

    said: list[str] = []
    target = create_env(Demo, say=said.append)
    marker = json.loads((target / "ptsdk-env.json").read_text())
    assert marker["installer"] == "uv" and marker["pip_fallback_steps"] == ["install x"]
    assert any("failed with uv; trying it with pip" in line for line in said)
    forced = envbuild.Installer("uv", "PTSDK_INSTALLER=uv", ("uv",), forced=True)
    monkeypatch.setattr(envbuild, "choose_installer", lambda spec: forced)
    with pytest.raises(PtsdkError):  # forced: no falling back
        create_env(Demo, say=said.append, force=True)
