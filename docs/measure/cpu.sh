#!/bin/bash
# Run as root from the repository root after `cargo build --release`; BINS="a/sigwho b/sigwho".
# CPU time per kill() call of a storm (cgroup v1 cpuacct; this kernel leaves steal time
# out of a task's CPU time), untraced and under `sigwho record` with each binary, rounds
# alternating. With the machine's CPUs busy the ratio equals the rate ratio; the
# "extra ns per call" column is what each tracer adds to one kill() (both signals of a
# group of two, and every CPU it costs: the senders, their spinning on the targets'
# siglocks, the targets).
. "$(dirname "$0")/recorder.sh"
S=${S:-target/release/sigwho-storm}
R=${R:-3}; D=${D:-2}
SHAPE=${SHAPE:---victim handle --call group}
SENDERS=${SENDERS:-2}
CG=/sys/fs/cgroup/cpuacct/sigwho-measure; mkdir -p $CG
storm() {
  local u0 u1 out
  u0=$(cat $CG/cpuacct.usage)
  out=$(sh -c "echo \$\$ > $CG/cgroup.procs; exec $S --senders $SENDERS --duration $D $SHAPE")
  u1=$(cat $CG/cpuacct.usage)
  local calls=$(echo "$out" | sed 's/.*calls=\([0-9]*\).*/\1/')
  local rate=$(echo "$out" | sed 's/.*rate=\([0-9]*\).*/\1/')
  echo "$(( (u1-u0) / calls )) $rate"
}
for r in $(seq 1 $R); do
  u=$(storm)
  for b in $BINS; do
    recorder_start "$b"
    t=$(storm)
    recorder_stop
    echo "$b $u $t"
  done
done | python3 -c '
import sys,collections,statistics
d=collections.defaultdict(list)
for l in sys.stdin:
    b,uc,ur,tc,tr=l.split(); d[b].append((int(uc),int(ur),int(tc),int(tr)))
for b,v in d.items():
    cr=[x[0]/x[2] for x in v]; extra=[x[2]-x[0] for x in v]
    print("%-28s cpu ratio median %.2f (%s)  extra ns per call median %d (%s)" % (b, statistics.median(cr), " ".join("%.2f"%x for x in cr), statistics.median(extra), " ".join(str(x) for x in extra)))
'
rmdir $CG 2>/dev/null || true
