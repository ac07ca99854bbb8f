#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for the tests (as root): munged, slurmctld and slurmd with a generated
# slurm.conf in DIR (state, spool, logs and sockets there too). Usage: slurm-local.sh start DIR | stop DIR.
# After start, SLURM_CONF=DIR/slurm.conf makes sbatch, squeue, scontrol use it. Exits non-zero (with the reason on
# stderr) where a daemon does not come up.
set -euo pipefail
cmd=$1 dir=$(realpath -m "$2")
case $cmd in
start)
  mkdir -p "$dir"/{state,spool,log}
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ { print int($2 / 1024) - 512 }' /proc/meminfo)
  # Ports of our own, so that a Slurm already running on this machine is left alone.
  base=$((20000 + RANDOM % 20000))
  cp /etc/munge/munge.key "$dir/munge.key"
  chmod 600 "$dir/munge.key"
  munged --force --socket="$dir/munge.sock" --key-file="$dir/munge.key" --pid-file="$dir/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge.seed"
  cat >"$dir/slurm.conf" <<CONF
ClusterName=snn-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.sock
CredType=cred/munge
SlurmctldPort=$base
SlurmdPort=$((base + 1))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 1 60); do
    if sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then exit 0; fi
    sleep 0.5
  done
  echo "slurm-local: the node did not become idle: $(sinfo -h -o '%T %E' 2>&1 | head -1); $(tail -n 3 "$dir/log/slurmd.log" "$dir/log/slurmctld.log" 2>&1 | tr '\n' ' ')" >&2
  exit 1
  ;;
stop)
  for pid in slurmd slurmctld munged; do
    if [[ -f $dir/$pid.pid ]]; then kill "$(cat "$dir/$pid.pid")" 2>/dev/null || true; fi
  done
  ;;
esac
