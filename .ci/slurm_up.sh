#!/usr/bin/env bash
# Starts a single-node SLURM (slurmctld + slurmd on this host, munge authentication) for
# tests/test_slurm.py. Debian/Ubuntu only: installs slurm-wlm and munge with apt-get when missing.
# Processes are tracked without cgroups (proctrack/linuxproc, task/none); slurmd 22.05 (Debian 12)
# still loads its cgroup plugin at start (CgroupPlugin=disabled exists only from 23.02), which works
# with the cgroup v1 hierarchy of these machines.
# Idempotent: a second call finds `sinfo` answering and returns at once. Exit status 0 = SLURM is up.
set -euo pipefail
STATE=${TIPR_SLURM_STATE:-/var/tmp/tipr-slurm}
log() { echo "slurm_up: $*"; }

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
node_up() { timeout 5 sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)$'; }
if pid_alive "$STATE/slurmctld.pid" && pid_alive "$STATE/slurmd.pid" && node_up; then
  log "SLURM already running: $(sinfo -h -o '%N %T %c CPUs')"; exit 0
fi
if [ "$(id -u)" != 0 ]; then log "must run as root (it writes /etc/slurm/slurm.conf and starts daemons)"; exit 1; fi
if ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || { log "no apt-get: install slurm-wlm and munge by hand"; exit 1; }
  log "installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# munge: one key, daemon as root-readable socket
mkdir -p /etc/munge /var/log/munge /run/munge /var/lib/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown -R munge:munge /etc/munge /var/log/munge /run/munge /var/lib/munge 2>/dev/null || true
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  log "starting munged"
  if id munge >/dev/null 2>&1; then
    su -s /bin/sh munge -c "/usr/sbin/munged --force" || /usr/sbin/munged --force
  else
    /usr/sbin/munged --force
  fi
  sleep 1
fi
munge -n </dev/null | unmunge >/dev/null || { log "munge does not work (see /var/log/munge/munged.log)"; exit 1; }

# slurm.conf for this host only
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
mkdir -p "$STATE/ctld" "$STATE/d" /etc/slurm
cat > /etc/slurm/slurm.conf <<CONF
# written by .ci/slurm_up.sh: single node, no cgroups, no accounting database
ClusterName=tipr
SlurmctldHost=$HOST
AuthType=auth/munge
# a requeued job may start again after cred_expire seconds (default 120)
AuthInfo=cred_expire=10
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
# SIGTERM -> SIGKILL delay when a job is cancelled or requeued
KillWait=5
MinJobAge=600
SchedulerParameters=defer_batch=0
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF

pid_alive "$STATE/slurmctld.pid" || { log "starting slurmctld (fresh state)"; /usr/sbin/slurmctld -c -i; }
pid_alive "$STATE/slurmd.pid" || { log "starting slurmd"; /usr/sbin/slurmd; }
for _ in $(seq 30); do
  if pid_alive "$STATE/slurmd.pid" && node_up; then
    log "SLURM is up: $(sinfo -h -o '%N %T %c CPUs')"; exit 0
  fi
  sleep 1
done
log "SLURM did not come up; last log lines:"
tail -n 5 "$STATE/slurmctld.log" "$STATE/slurmd.log" 2>/dev/null || true
exit 1
