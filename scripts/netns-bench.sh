#!/usr/bin/env bash
# Updates/s of a real multi-host run at a chosen size (issue #20): the coordinator and three workers each in a Linux
# network namespace of its own, joined by veth pairs on a bridge (real TCP), under each condition of test/netns.test.ts:
# plain, 50 ms delay (a proxy on each worker host holding what the worker sends, as tc netem would on its egress; this
# kernel has no sch_netem), 5% packet loss (nftables, both directions), one host partitioned for longer than
# worker_timeout, a coordinator SIGKILLed and restarted with --resume auto, and CURVE keys.
# Every epoch trains (burn-in off), so that updates/s counts every interval. Needs root, iproute2, nftables and a build.
#   scripts/netns-bench.sh [PARAMS] [EPOCHS]    default: parameters/fitting-activity.toml, 50 epochs (10 updates)
set -euo pipefail
cd "$(dirname "$0")/.."
PARAMS=${1:-parameters/fitting-activity.toml}
EPOCHS=${2:-50}
ID=$(printf '%04x' $((RANDOM % 65536)))
NET=10.78.$((RANDOM % 250 + 1))
WORK=$(mktemp -d /tmp/snn-netns-bench-XXXX)
BR=snbb$ID
ns() { echo "snnb-$ID-h$1"; }

cleanup() {
  pkill -f "$WORK" 2>/dev/null || true
  for i in 1 2 3 4; do ip netns del "$(ns "$i")" 2>/dev/null || true; ip link del "snbv$ID$i" 2>/dev/null || true; done
  ip link del "$BR" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ip link add "$BR" type bridge && ip link set "$BR" up
for i in 1 2 3 4; do
  ip netns add "$(ns "$i")"
  ip link add "snbv$ID$i" type veth peer name "snbp$ID$i"
  ip link set "snbp$ID$i" netns "$(ns "$i")"
  ip -n "$(ns "$i")" link set "snbp$ID$i" name eth0
  ip -n "$(ns "$i")" addr add "$NET.$i/24" dev eth0
  ip -n "$(ns "$i")" link set lo up
  ip -n "$(ns "$i")" link set eth0 up
  ip link set "snbv$ID$i" master "$BR"
  ip link set "snbv$ID$i" up
done
node dist/cli/snn-coord.js --keygen "$WORK/keys" --worker-keys 3 >/dev/null

coordinator() { # DIR PORT EXTRA... (without --keys: --insecure)
  local dir=$1 port=$2; shift 2
  [[ " $* " == *" --keys "* ]] || set -- "$@" --insecure
  ip netns exec "$(ns 1)" node dist/cli/snn-coord.js "$PARAMS" --epochs "$EPOCHS" --no-figures --external --bind "tcp://$NET.1:$port" \
    --min-workers 3 --output "$dir" --metrics-port 0 --set distributed.worker_timeout=5 --set simulation.burn_in_epochs=0 "$@" >>"$dir.log" 2>&1
}
workers() { # ENDPOINT_HOST ENDPOINT_PORT EXTRA... (EXTRA may contain KEY, replaced by each host's key)
  local host=$1 port=$2; shift 2
  WPIDS=()
  for h in 2 3 4; do
    local extra=("${@//KEY/$WORK/keys/workers/worker-$((h - 2)).key_secret}")
    ip netns exec "$(ns "$h")" node dist/cli/snn-worker.js --connect "tcp://$host:$port" --metrics-port 0 --timeout 30 "${extra[@]}" >>"$WORK/worker-$h.log" 2>&1 &
    WPIDS+=($!)
  done
}
rate() { # LABEL DIR SECONDS
  local updates
  updates=$(($(wc -l <"$2/metrics.csv") - 1))
  awk -v l="$1" -v u="$updates" -v s="$3" 'BEGIN { printf "%-34s %5.2f updates/s (%d updates in %.1f s)\n", l, u / s, u, s }'
}
started() { grep -q "Starting training" "$1.log" 2>/dev/null; }
timed_run() { # LABEL DIR PORT COORD_EXTRA -- WORKER_HOST WORKER_PORT WORKER_EXTRA...
  local label=$1 dir=$2 port=$3 t0 t1; shift 3
  local cextra=()
  while [ "$1" != "--" ]; do cextra+=("$1"); shift; done
  shift
  coordinator "$dir" "$port" "${cextra[@]}" &
  local c=$!
  workers "$@"
  until started "$dir"; do sleep 0.05; done
  t0=$(date +%s.%N)
  wait "$c"
  t1=$(date +%s.%N)
  wait "${WPIDS[@]}" || true
  rate "$label" "$dir" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
}

echo "network: $PARAMS, $EPOCHS epochs, coordinator + 3 worker hosts (one worker process each) on $(nproc) cores"
timed_run "3 hosts" "$WORK/plain" 5601 -- "$NET.1" 5601
timed_run "3 hosts, CURVE" "$WORK/curve" 5602 --keys "$WORK/keys" -- "$NET.1" 5602 --server-key "$WORK/keys/coordinator.key" --key KEY

# 50 ms delay: each worker reaches the coordinator through a proxy on its own host.
for h in 2 3 4; do ip netns exec "$(ns "$h")" node test/helpers/delay-proxy.mjs 5700 "$NET.1" 5603 50 >"$WORK/proxy-$h.log" 2>&1 & done
sleep 1
timed_run "50 ms delay (proxy)" "$WORK/delay" 5603 -- 127.0.0.1 5700
pkill -f "delay-proxy.mjs 5700" || true

# 5% loss in both directions on every worker host.
for h in 2 3 4; do
  ip netns exec "$(ns "$h")" nft add table inet snnloss
  for hook in input output; do
    ip netns exec "$(ns "$h")" nft add chain inet snnloss "$hook" "{ type filter hook $hook priority 0; }"
    ip netns exec "$(ns "$h")" nft add rule inet snnloss "$hook" meta iifname != lo meta oifname != lo numgen random mod 100 lt 5 drop
  done
done
timed_run "5% loss (nftables)" "$WORK/loss" 5604 -- "$NET.1" 5604
for h in 2 3 4; do ip netns exec "$(ns "$h")" nft delete table inet snnloss; done

# A host partitioned for 8 s (worker_timeout 5 s) once training runs; it rejoins when the link is back.
( until started "$WORK/partition"; do sleep 0.05; done; sleep 2; ip link set "snbv${ID}4" down; sleep 8; ip link set "snbv${ID}4" up ) &
PART=$!
timed_run "partition of 1 host (8 s)" "$WORK/partition" 5605 -- "$NET.1" 5605
wait "$PART"

# The coordinator SIGKILLed after its first checkpoint and restarted with --resume auto; the workers rejoin.
dir=$WORK/restart
coordinator "$dir" 5606 --set simulation.checkpoint_interval=10 &
workers "$NET.1" 5606
until started "$dir"; do sleep 0.05; done
t0=$(date +%s.%N)
until [ -e "$dir/checkpoints/checkpoint_latest.safetensors" ]; do sleep 0.05; done
pkill -KILL -f -- "--bind tcp://$NET.1:5606" || true
sleep 0.5
coordinator "$dir" 5606 --set simulation.checkpoint_interval=10 --resume auto
t1=$(date +%s.%N)
wait "${WPIDS[@]}" || true
rate "coordinator restart (whole run)" "$dir" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
