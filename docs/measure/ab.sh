#!/bin/bash
# Run as root from the repository root after `cargo build --release`; BINS="old/sigwho new/sigwho".
# A/B: recorder with each binary in $BINS, alternating, $R rounds, shape $SHAPE.
. "$(dirname "$0")/recorder.sh"
S=${S:-target/release/sigwho-storm}
R=${R:-3}; D=${D:-2}
SHAPE=${SHAPE:---victim ignore}
storm() { $S --senders 2 --duration $D $SHAPE | sed 's/.*rate=\([0-9]*\).*/\1/'; }
sysctl -q kernel.bpf_stats_enabled=0
for r in $(seq 1 $R); do
  u=$(storm)
  for b in $BINS; do
    recorder_start "$b"
    rate=$(storm)
    sysctl -q kernel.bpf_stats_enabled=1
    id=$(bpftool prog show -j | python3 -c 'import json,sys; print([p["id"] for p in json.load(sys.stdin) if p.get("name")=="signal_generate"][-1])')
    a=$(bpftool prog show id $id -j | python3 -c 'import json,sys; p=json.load(sys.stdin); print(p.get("run_cnt",0), p.get("run_time_ns",0))')
    storm > /dev/null
    bb=$(bpftool prog show id $id -j | python3 -c 'import json,sys; p=json.load(sys.stdin); print(p.get("run_cnt",0), p.get("run_time_ns",0))')
    sysctl -q kernel.bpf_stats_enabled=0
    recorder_stop
    echo "$(basename $b) $u $rate $a $bb"
  done
done | python3 -c '
import sys,collections,statistics
d=collections.defaultdict(list)
for l in sys.stdin:
    f=l.split(); b=f[0]; u=int(f[1]); r=int(f[2]); a0,a1,b0,b1=map(int,f[3:7])
    d[b].append((r/u,(b1-a1)/max(1,b0-a0)))
for b,v in d.items():
    print("%-16s ratio median %.2f (%s)  prog ns min %.0f median %.0f" % (b, statistics.median(x[0] for x in v), " ".join("%.2f"%x[0] for x in v), min(x[1] for x in v), statistics.median(x[1] for x in v)))
'
