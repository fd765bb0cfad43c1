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
from ptsdk.envbuild import built_from, create_env, is_stale, list_envs, remove_env
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
        f'[project]\nname = "{name}"\nversion = "1.0"\n\n'
        '[build-system]\nrequires = []\nbuild-backend = "demo_build"\nbackend-path = ["."]\n'
    )
    (src / "demo_build.py").write_text(_BUILD_BACKEND.format(name=name, requires=list(requires)))
    return src


@pytest.mark.envbuild  # two real venvs: ~20 s on an idle machine, 30-40 s under load
def test_a_real_build_runs_the_declared_steps(home: Path, tmp_path: Path) -> None:
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
