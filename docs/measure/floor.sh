#!/bin/bash
# Run as root from the repository root after `cargo build --release`.
# Per shape, alternating, R rounds: untraced; empty raw_tp on signal_generate; the same +
# empty classic tracepoint on syscalls:sys_exit_kill (sigwho's two hooks on this host,
# doing nothing); sigwho filtered view; sigwho filtered with the failed-attempt hooks off.
S=${S:-target/release/sigwho-storm}
SW=${SW:-target/release/sigwho}
R=${R:-3}; D=${D:-3}
storm() { $S --senders 2 --duration $D $SHAPE | sed 's/.*rate=\([0-9]*\).*/\1/'; }
with_empty() { python3 $(dirname "$0")/empty.py "$@" > /tmp/sigwho-empty.out 2>&1 & E=$!; until grep -qs attached /tmp/sigwho-empty.out; do sleep 0.05; done; storm; kill $E; wait $E 2>/dev/null; }
with_sigwho() { sleep 1000 & I=$!; env $1 $SW --target-pid $I > /dev/null 2> /tmp/f.err & P=$!; for i in $(seq 1 100); do grep -q "tracing" /tmp/f.err && break; sleep 0.1; done; storm; kill -INT $P; wait $P 2>/dev/null; kill $I; }
for r in $(seq 1 $R); do
  echo "$(storm) $(with_empty raw:signal_generate) $(with_empty raw:signal_generate tp:syscalls/sys_exit_kill) $(with_sigwho X=1) $(with_sigwho SIGWHO_DISABLE_HOOKS=kill,tkill,tgkill,pidfd_send_signal,rt_sigqueueinfo,rt_tgsigqueueinfo)"
done | python3 -c '
import sys,statistics
rows=[list(map(int,l.split())) for l in sys.stdin]
names=["empty signal_generate","empty both hooks","sigwho filtered","sigwho filtered, failed hooks off"]
u=statistics.median(r[0] for r in rows)
print("untraced median %.2f M/s" % (u/1e6))
for i,n in enumerate(names,1):
    rs=[r[i]/r[0] for r in rows]
    print("  %-36s median %.2f  (%s)" % (n, statistics.median(rs), " ".join("%.2f"%x for x in rs)))
'
