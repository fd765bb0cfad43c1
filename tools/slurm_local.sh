#!/usr/bin/env bash
# A real Slurm (Debian's slurm-wlm) on this one machine, for ptsdk's launcher tests (../shared/CLUSTERS.md).
#
#   tools/slurm_local.sh install     # apt-get install slurm-wlm munge (root; a few seconds)
#   tools/slurm_local.sh start DIR   # munged, slurmctld and slurmd with their state, logs and pids under DIR
#   tools/slurm_local.sh stop DIR    # stop the daemons started by `start DIR`
#
# Two nodes, node1 and node2, both this host (two slurmd, each with its own port, spool, pid and log: Debian's
# build takes `slurmd -N NAME`), in one partition `debug`, so a multi-node job really gets two nodes and srun
# starts a task on each. No accounting, no cgroups (22.05 fails with CgroupPlugin=disabled; without a cgroup.conf
# it starts). Needs root: Slurm's own files live under /etc/slurm and /etc/munge.
set -euo pipefail

cmd=${1:?install, start DIR or stop DIR}
case $cmd in
install)
  command -v slurmctld >/dev/null && command -v munged >/dev/null && exit 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
  ;;
start)
  dir=${2:?start needs a state folder}
  if scontrol ping 2>/dev/null | grep -q "is UP"; then
    exit 0  # a Slurm is already up here: use it
  fi
  mkdir -p "$dir"/{spool/ctld,spool/d,log}
  dir=$(cd "$dir" && pwd)
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(awk '/MemAvailable/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
  # munge: its key, its run folder, the daemon as the munge user
  install -d -o munge -g munge -m 700 /etc/munge /var/lib/munge /var/log/munge
  install -d -o munge -g munge -m 755 /run/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    su -s /bin/sh munge -c "munged --pid-file=$dir/munged.pid.tmp" 2>/dev/null || runuser -u munge -- munged
    sleep 1
  fi
  munge -n | unmunge >/dev/null
  mkdir -p /etc/slurm
  rm -f /etc/slurm/cgroup.conf
  cat >/etc/slurm/slurm.conf <<CONF
ClusterName=ptsdk
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=$dir/spool/ctld
SlurmdSpoolDir=$dir/spool/d-%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
NodeName=node1 NodeHostname=$host NodeAddr=127.0.0.1 Port=17001 CPUs=$cpus RealMemory=$mem State=UNKNOWN
NodeName=node2 NodeHostname=$host NodeAddr=127.0.0.1 Port=17002 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=node1,node2 Default=YES MaxTime=INFINITE State=UP
CONF
  slurmctld
  slurmd -N node1
  slurmd -N node2
  for _ in $(seq 60); do
    if [[ $(sinfo -h -N -o %t 2>/dev/null | grep -cx idle) == 2 ]]; then
      exit 0
    fi
    sleep 0.5
  done
  echo "slurm did not come up; see $dir/log" >&2
  exit 1
  ;;
stop)
  dir=${2:?stop needs the state folder given to start}
  for pid in "$dir"/slurmd-*.pid "$dir"/slurmctld.pid; do
    [[ -s $pid ]] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  ;;
*)
  echo "unknown command $cmd" >&2
  exit 2
  ;;
esac
