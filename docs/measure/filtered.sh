#!/bin/bash
# Run as root from the repository root after `cargo xtask build --release`.
# The filtered live view against its floor in the same minutes: per round, alternating,
# the storm untraced, under `sigwho --target-pid <an idle sleep>` with every program
# returning at once (SIGWHO_DISABLE_HOOKS=programs), and as shipped. Prints each one's
# share of untraced (per round, and the median) and the view's share of the floor.
S=${S:-target/release/sigwho-storm}
SW=${SW:-target/release/sigwho}
R=${R:-10}; D=${D:-3}
SHAPE=${SHAPE:---victim handle --call group}
storm() { $S --senders 2 --duration $D $SHAPE | sed 's/.*rate=\([0-9]*\).*/\1/'; }
with_sigwho() { sleep 1000 & I=$!; env $1 $SW --target-pid $I > /dev/null 2> /tmp/sigwho-filtered.err & P=$!; for i in $(seq 1 100); do grep -q "tracing" /tmp/sigwho-filtered.err && break; sleep 0.1; done; storm; kill -INT $P; wait $P 2>/dev/null; kill $I; wait $I 2>/dev/null; }
for r in $(seq 1 $R); do
  echo "$(storm) $(with_sigwho SIGWHO_DISABLE_HOOKS=programs) $(with_sigwho X=1)"
done | python3 -c '
import sys,statistics
rows=[list(map(int,l.split())) for l in sys.stdin]
print("untraced median %.0f k/s over %d rounds (%s)" % (statistics.median(r[0] for r in rows)/1e3, len(rows), " ".join("%.0f"%(r[0]/1e3) for r in rows)))
for i,n in enumerate(["hooks floor (programs)","filtered view"],1):
    rs=[r[i]/r[0] for r in rows]
    print("  %-24s share: by round %.2f, of medians %.2f  (%s)" % (n, statistics.median(rs), statistics.median(r[i] for r in rows)/statistics.median(r[0] for r in rows), " ".join("%.2f"%x for x in rs)))
print("  filtered of the floor, per round: median %.2f" % statistics.median(r[2]/r[1] for r in rows))
'
