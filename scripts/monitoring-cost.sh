#!/bin/bash
# What monitoring costs an idle topology: the CPU of each tier over 60 s of `ladder up --rung 7
# --web 3`, with monitoring (Prometheus, Alertmanager, the exporters) and then without
# (--no-monitor), in one run, from /proc/<pid>/stat (utime+stime of each node's process tree).
# Run from the repository root: bash scripts/monitoring-cost.sh  (docs/performance.md)
set -euo pipefail
run() {
export LADDER_STATE_DIR=$(mktemp -d /tmp/ladder-moncost-XXXX)
node bin/ladder.mjs up --rung 7 --web 3 "$@" >/dev/null 2>&1
sleep 10
pids() { python3 - "$LADDER_STATE_DIR" <<'PY'
import json,sys
s=json.load(open(sys.argv[1]+'/up/state.json'))
for n in s['nodes']:
    g='monitoring' if n['role'] in ('prometheus','alertmanager') else n['role']
    print(g, n['pid'])
    if n.get('exporter') and n['exporter'].get('pid'): print('monitoring', n['exporter']['pid'])
PY
}
tree() { local p=$1; echo $p; for c in $(cat /proc/$p/task/*/children 2>/dev/null); do tree $c; done; }
ticks() { local t=0; for p in $(tree $1); do s=$(cut -d' ' -f14,15 /proc/$p/stat 2>/dev/null || echo "0 0"); t=$((t + ${s% *} + ${s#* })); done; echo $t; }
unset a b; declare -A a b
while read g p; do a[$g]=$(( ${a[$g]:-0} + $(ticks $p) )); done < <(pids)
sleep 60
while read g p; do b[$g]=$(( ${b[$g]:-0} + $(ticks $p) )); done < <(pids)
for g in "${!a[@]}"; do python3 -c "print('  $g', round(($((b[$g]-a[$g])))/100/60, 4), 'cores')"; done | sort
node bin/ladder.mjs down >/dev/null 2>&1
rm -rf "$LADDER_STATE_DIR"
}
echo "monitored (ladder up --rung 7 --web 3):"
run --monitor
echo "not monitored (--no-monitor):"
run --no-monitor
