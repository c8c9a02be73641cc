#!/bin/bash
# Run as root from the repository root after `cargo build --release`.
# The recorder against its two floors in the same minutes: per round, alternating, the
# storm untraced, under `sigwho record` with every program returning at once
# (SIGWHO_DISABLE_HOOKS=programs), with signal_generate only counting
# (SIGWHO_DISABLE_HOOKS=count-only), and as shipped. Prints each one's share of untraced
# and the recorder's share of the counting floor.
. "$(dirname "$0")/recorder.sh"
S=${S:-target/release/sigwho-storm}
SW=${SW:-target/release/sigwho}
R=${R:-5}; D=${D:-3}
SHAPE=${SHAPE:---victim handle}
storm() { $S --senders 2 --duration $D $SHAPE | sed 's/.*rate=\([0-9]*\).*/\1/'; }
under() { SIGWHO_DISABLE_HOOKS=$1 recorder_start "$SW"; storm; recorder_stop; }
for r in $(seq 1 $R); do
  echo "$(storm) $(under programs) $(under count-only) $(under '')"
done | python3 -c '
import sys,statistics
rows=[list(map(int,l.split())) for l in sys.stdin]
print("untraced median %.2f M/s over %d rounds" % (statistics.median(r[0] for r in rows)/1e6, len(rows)))
names=["hooks floor (programs)","counting floor (count-only)","recorder"]
for i,n in enumerate(names,1):
    rs=[r[i]/r[0] for r in rows]
    print("  %-28s share median %.2f  (%s)" % (n, statistics.median(rs), " ".join("%.2f"%x for x in rs)))
print("  recorder of the counting floor, per round: median %.2f" % statistics.median(r[3]/r[2] for r in rows))
'
