"""`ptsdk export skypilot`: a job as a SkyPilot task YAML (https://docs.skypilot.co).

The task runs `ptsdk run` on every node SkyPilot starts:

- **resources**: ``accelerators: {TYPE: distributed.gpus_per_node}`` for a GPU job (``--accelerators``
  names the type; without it any of :data:`DEFAULT_GPUS`), ``cpus: N+`` for a CPU job; ``num_nodes`` is
  ``distributed.nodes`` (``--nodes`` overrides it before the job is checked).
- **file_mounts**: every local file or folder the job reads (data, model, reward files, chat template,
  adapter to start from) goes to ``~/ptsdk-jobs/NAME/inputs/``, and the job itself is written beside it
  with those paths relative to it (ptsdk reads a job's relative paths relative to the job file). A
  ptsdk checkout (the default way to install ptsdk there) goes to ``~/ptsdk-src``.
- **setup**: a virtual environment with ptsdk (``~/.ptsdk-venv``), then ``ptsdk env create BACKEND``.
- **run**: ``ptsdk run job.json -b BACKEND --run-dir ~/ptsdk-runs/...`` on each node.

Several nodes: ptsdk's job holds the rendezvous host as a literal (``distributed.master_addr``; no
environment variable is read at run time) and no node rank (torchrun's c10d rendezvous assigns ranks
itself). So the job is exported with a placeholder host that the run step replaces, on every node, with
the head node's address (the first line of ``$SKYPILOT_NODE_IPS``), after checking that SkyPilot started
as many nodes as the job says (``$SKYPILOT_NUM_NODES``). That is correct for backends whose launcher is
torchrun (every node runs the same command); a multi-node job whose backend launches through DeepSpeed's
ssh launcher or a Ray cluster is refused: one ``ptsdk run`` per node would start N separate runs there.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from ptsdk import __version__
from ptsdk.errors import PtsdkError, UnsupportedError

#: Accelerator types asked for when --accelerators is not given (SkyPilot takes any one of them).
DEFAULT_GPUS = ("H100", "A100-80GB", "A100")
#: Stands for the head node's address in the exported job; the run step puts the real one in its place.
HEAD_PLACEHOLDER = "__PTSDK_SKYPILOT_HEAD_IP__"
REMOTE_JOBS = "ptsdk-jobs"  # under $HOME on each node
REMOTE_RUNS = "ptsdk-runs"
REMOTE_SRC = "~/ptsdk-src"
REMOTE_VENV = "$HOME/.ptsdk-venv"
_ACCELERATOR = re.compile(r"(?P<name>[A-Za-z][A-Za-z0-9._-]*)(?::(?P<count>\d+))?")
_CLOUD = re.compile(r"[a-z][a-z0-9-]*")
_TASK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_JOB_EOF = "PTSDK_JOB_JSON"


def export_skypilot(
    job: str | Path,
    backend: str,
    *,
    nodes: int | None = None,
    accelerators: str | None = None,
    cloud: str | None = None,
    name: str | None = None,
    ptsdk_source: str | None = None,
    say: Callable[[str], None] | None = None,
) -> str:
    """The SkyPilot task YAML that runs the job file `job` on `backend` (see the module's docstring).

    Everything is checked before any text is made: the options, the job (spec, files, data, the backend's
    verdict) and whether the run can be started on SkyPilot's nodes as ptsdk's spec states it; a problem is
    a PtsdkError (exit 2) naming the option or field. `say` gets the checks' warnings and notes."""
    from ptsdk.pipeline import check_job
    from ptsdk.plugins.manager import get_backend
    from ptsdk.spec.load import default_name, prepare_job, read_job_data, shown_path, validate_job

    if nodes is not None and nodes < 1:
        raise PtsdkError(f"--nodes {nodes}: a task runs on at least 1 node")
    wanted = _parse_accelerators(accelerators)
    if cloud is not None and not _CLOUD.fullmatch(cloud.lower()):
        raise PtsdkError(f"--cloud {cloud!r}: not a cloud name (aws, gcp, azure, kubernetes, lambda, runpod, ...)")
    if name is not None and not _TASK_NAME.fullmatch(name):
        raise PtsdkError(f"--name {name!r}: use letters, digits, '.', '_' and '-'")
    install = _ptsdk_install(ptsdk_source)

    path = Path(job)
    where = shown_path(path)
    data = read_job_data(path)
    if nodes is not None and isinstance(data.get("distributed") or {}, dict):
        data["distributed"] = {**(data.get("distributed") or {}), "nodes": nodes}
    loaded = validate_job(data, source=where)
    if loaded.name is None:
        loaded.name = default_name(path.stem)
    base = path.resolve().parent
    loaded = prepare_job(loaded, base, source=where)
    d = loaded.distributed
    multi = d.nodes > 1
    if multi:
        if d.master_addr and say is not None:
            say(
                f"note: distributed.master_addr {d.master_addr!r} is replaced on each node by the head node's "
                "address ($SKYPILOT_NODE_IPS)"
            )
        d.master_addr = HEAD_PLACEHOLDER
    _, warnings = check_job(loaded, backend, source=where, base=base, launching=False)
    for line in warnings:
        if say is not None:
            say(line)
    plan = get_backend(backend)().translate(loaded)
    if multi and plan.launcher.kind != "torchrun":
        raise UnsupportedError(
            f"{where}: a {d.nodes}-node run on {backend} cannot be exported to SkyPilot",
            lines=[_multi_node_problem(plan.launcher.kind, backend, d.nodes)],
        )
    if d.device == "gpu":
        counts = {n: c for n, c in wanted.items() if c is not None and c != d.gpus_per_node}
        if counts:
            n, c = next(iter(counts.items()))
            raise PtsdkError(
                f"--accelerators {n}:{c}: the job runs {d.gpus_per_node} process(es) per node "
                f"(distributed.gpus_per_node); ask for {n}:{d.gpus_per_node} or change the job"
            )
    elif wanted:
        raise PtsdkError(
            f"--accelerators {accelerators}: the job runs on CPUs (distributed.device: cpu); "
            "drop --accelerators or set distributed.device: gpu"
        )

    job_name = loaded.name or "job"
    remote_dir = f"~/{REMOTE_JOBS}/{job_name}"
    mounts = _relocate_inputs(loaded, remote_dir)
    job_data = loaded.model_dump(mode="json")
    validate_job(json.loads(json.dumps(job_data)), source="the exported job")  # what the nodes will load
    job_text = json.dumps(job_data, indent=2)
    if job_text.count(HEAD_PLACEHOLDER) != (1 if multi else 0):
        raise PtsdkError(f"{where}: the job names {HEAD_PLACEHOLDER!r}, which the SkyPilot export reserves")

    resources: dict[str, Any] = {}
    if cloud is not None:
        resources["cloud"] = cloud.lower()
    if d.device == "gpu":
        resources["accelerators"] = {n: d.gpus_per_node for n in (wanted or dict.fromkeys(DEFAULT_GPUS))}
    else:
        resources["cpus"] = f"{max(2, d.gpus_per_node)}+"
    if install.startswith("/"):
        mounts = {REMOTE_SRC: install, **mounts}
    task: dict[str, Any] = {
        "name": name or job_name,
        "num_nodes": d.nodes,
        "resources": resources,
        "file_mounts": mounts or None,
        "setup": _setup(install, backend),
        "run": _run(job_name, backend, job_text, d.nodes, d.gpus_per_node if d.device == "gpu" else 0),
    }
    if not mounts:
        del task["file_mounts"]
    header = [
        f"# SkyPilot task: {job_name} on {backend}, exported by ptsdk {__version__} from {where}.",
        f"# Launch: sky launch -c CLUSTER THIS_FILE   (the run directories are under ~/{REMOTE_RUNS} on each node)",
    ]
    if multi:
        header.append(
            f"# {d.nodes} nodes: each runs `ptsdk run` (torchrun, c10d rendezvous at the head node's address "
            f"port {d.master_port}); torchrun, not SkyPilot's node rank, assigns the global ranks."
        )
        header.append(
            "# Global rank 0 (it saves the model and logs the metrics) lands on the node c10d gives it; that node's "
            "run directory holds the result, the others' manifests say so (rank_zero_elsewhere)."
        )
    if d.device == "gpu" and not wanted:
        header.append(f"# accelerators: any of {', '.join(DEFAULT_GPUS)}; choose with --accelerators TYPE.")
    return "\n".join(header) + "\n" + yaml.dump(task, Dumper=_Dumper, sort_keys=False, width=120)


def _parse_accelerators(text: str | None) -> dict[str, int | None]:
    """--accelerators 'H100' / 'H100:8' / 'H100:8,A100-80GB:8' as {type: count or None}."""
    if text is None:
        return {}
    out: dict[str, int | None] = {}
    for part in text.split(","):
        m = _ACCELERATOR.fullmatch(part.strip())
        if not m:
            raise PtsdkError(
                f"--accelerators {text!r}: {part.strip()!r} is not TYPE or TYPE:COUNT (e.g. H100 or H100:8); "
                "several types (any of them) are separated by commas"
            )
        count = int(m.group("count")) if m.group("count") is not None else None
        if count == 0:
            raise PtsdkError(f"--accelerators {text!r}: {m.group('name')}:0 asks for no accelerator")
        out[m.group("name")] = count
    return out


def _ptsdk_install(source: str | None) -> str:
    """What the nodes install: a local checkout (absolute path, mounted) or a pip requirement."""
    if source is None:
        import ptsdk

        root = Path(ptsdk.__file__).resolve().parent.parent
        pyproject = root / "pyproject.toml"
        try:
            is_checkout = pyproject.is_file() and 'name = "ptsdk"' in pyproject.read_text()
        except OSError:
            is_checkout = False
        return str(root) if is_checkout else f"ptsdk=={__version__}"
    if source.startswith((".", "/", "~")):
        folder = Path(source).expanduser().resolve()
        if not (folder / "pyproject.toml").is_file():
            raise PtsdkError(f"--ptsdk {source}: no pyproject.toml there; name a ptsdk checkout or a pip requirement")
        return str(folder)
    if not source.strip() or any(c in source for c in "\n\r\0"):
        raise PtsdkError(f"--ptsdk {source!r}: name a ptsdk checkout or a pip requirement (e.g. ptsdk==0.1.0)")
    return source


def _multi_node_problem(kind: str, backend: str, nodes: int) -> str:
    if kind == "deepspeed":
        return (
            f"distributed.nodes: {backend} starts {nodes} nodes with DeepSpeed's launcher, which reaches the other "
            "nodes by ssh from a hostfile ptsdk writes with the master only, while a SkyPilot task starts ptsdk on "
            "every node; export with --nodes 1 or choose a torchrun backend (trl, axolotl)"
        )
    return (
        f"distributed.nodes: {backend} runs this job on a Ray cluster ({kind} launcher), which the exported task "
        f"does not start across {nodes} nodes (one `ptsdk run` per node would start {nodes} separate runs); "
        "export with --nodes 1, or start Ray on the nodes yourself and set distributed.ray_address"
    )


def _relocate_inputs(job: Any, remote_dir: str) -> dict[str, str]:
    """Point the job's local paths (absolute after loading) at their copies under remote_dir/inputs, relative to
    the job file the nodes read; returns SkyPilot's file_mounts (remote path -> local path)."""
    from ptsdk.spec.method import _OnlineRL

    mounts: dict[str, str] = {}
    remote_of: dict[str, str] = {}

    def move(local: str) -> str:
        if local not in remote_of:
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(local).name).lstrip(".-") or "input"
            rel = f"inputs/{len(remote_of)}-{stem}"
            remote_of[local] = rel
            mounts[f"{remote_dir}/{rel}"] = local
        return f"./{remote_of[local]}"

    def is_local(text: str | None) -> bool:
        return bool(text) and Path(str(text)).is_absolute()

    for source in (job.data.train, job.data.eval):
        if source is not None and source.is_local and is_local(source.path):
            source.path = move(source.path)
    if is_local(job.model.name_or_path):
        job.model.name_or_path = move(job.model.name_or_path)
    if job.model.chat_template and job.model.chat_template.endswith(".jinja") and is_local(job.model.chat_template):
        job.model.chat_template = move(job.model.chat_template)
    if is_local(getattr(job.adapter, "init_path", None)):
        job.adapter.init_path = move(job.adapter.init_path)
    if is_local(getattr(job.method, "reward_model", None)):
        job.method.reward_model = move(job.method.reward_model)
    if isinstance(job.method, _OnlineRL) and job.method.rewards:
        rewards = []
        for ref in job.method.rewards:
            target, fn = ref.rsplit(":", 1)
            rewards.append(f"{move(target)}:{fn}" if target.endswith(".py") and is_local(target) else ref)
        job.method.rewards = rewards
    if Path(job.output.dir).is_absolute():  # the run directory is given on the command line; keep no local path
        job.output.dir = REMOTE_RUNS
    return mounts


def _setup(install: str, backend: str) -> str:
    venv = REMOTE_VENV
    target = f'"{REMOTE_SRC.replace("~", "$HOME")}"' if install.startswith("/") else shlex.quote(install)
    return "\n".join(
        [
            "set -euo pipefail",
            "# ptsdk in its own virtual environment (Python 3.10+), then the backend's pinned environment",
            f'[ -x "{venv}/bin/python" ] || python3 -m venv "{venv}"',
            f'"{venv}/bin/python" -m pip install -q --disable-pip-version-check {target}',
            f'"{venv}/bin/ptsdk" env create {shlex.quote(backend)}',
        ]
    )


def _run(job_name: str, backend: str, job_text: str, nodes: int, gpus: int) -> str:
    job_dir = f"$HOME/{REMOTE_JOBS}/{job_name}"
    suffix = "-node${SKYPILOT_NODE_RANK}" if nodes > 1 else ""
    run_dir = f"$HOME/{REMOTE_RUNS}/{job_name}-{backend}-${{SKYPILOT_TASK_ID:-run}}{suffix}"
    lines = [
        "set -euo pipefail",
        f'JOB_DIR="{job_dir}"',
        'mkdir -p "$JOB_DIR"',
        "# The job, its local paths pointing at the inputs mounted beside it",
        f"cat > \"$JOB_DIR/job.json\" <<'{_JOB_EOF}'",
        job_text,
        _JOB_EOF,
    ]
    if gpus:
        lines += [
            f'if [ "${{SKYPILOT_NUM_GPUS_PER_NODE:-0}}" -lt {gpus} ]; then',
            f'  echo "ptsdk: the job runs {gpus} process(es) per node on GPUs (distributed.gpus_per_node); this '
            'node has ${SKYPILOT_NUM_GPUS_PER_NODE:-0}" >&2',
            "  exit 2",
            "fi",
        ]
    if nodes > 1:
        lines += [
            "# Multi-node: torchrun meets at the head node (the first of SkyPilot's node IPs)",
            f'if [ "${{SKYPILOT_NUM_NODES:-}}" != "{nodes}" ]; then',
            f'  echo "ptsdk: the job runs on {nodes} nodes (distributed.nodes) but SkyPilot started '
            '${SKYPILOT_NUM_NODES:-?}; export it again with --nodes N" >&2',
            "  exit 2",
            "fi",
            'HEAD_IP="$(printf \'%s\\n\' "${SKYPILOT_NODE_IPS:-}" | head -n 1)"',
            'if [ -z "$HEAD_IP" ]; then echo "ptsdk: SKYPILOT_NODE_IPS is empty" >&2; exit 2; fi',
            f'sed -i "s|{HEAD_PLACEHOLDER}|$HEAD_IP|" "$JOB_DIR/job.json"',
            'echo "ptsdk: node ${SKYPILOT_NODE_RANK} of ' + str(nodes) + ', rendezvous at $HEAD_IP"',
        ]
    lines += [
        'cd "$JOB_DIR"',
        f'exec "{REMOTE_VENV}/bin/ptsdk" run job.json --backend {shlex.quote(backend)} --run-dir "{run_dir}"',
    ]
    return "\n".join(lines) + "\n"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (setup, run) as literal blocks, as people write SkyPilot tasks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)
