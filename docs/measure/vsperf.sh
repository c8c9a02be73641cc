#!/bin/bash
# Run as root from the repository root after `cargo build --release`; BINS="a/sigwho b/sigwho".
# Recorder against perf record in the same minutes: per round, alternating, the storm
# untraced, under `perf record -a -e signal:signal_generate` (the bench's command line),
# and under `sigwho record` with each binary in $BINS. Prints each one's share of
# untraced and, for each binary, recorder ÷ perf per round and its median: issue 15's
# "recorder ≥ 1.3 × perf record" with the spread a single bench run hides.
. "$(dirname "$0")/recorder.sh"
S=${S:-target/release/sigwho-storm}
R=${R:-5}; D=${D:-3}
SHAPE=${SHAPE:---victim handle --call group}
storm() { $S --senders 2 --duration $D $SHAPE | sed 's/.*rate=\([0-9]*\).*/\1/'; }
CTL=/tmp/sigwho-measure.ctl; ACK=/tmp/sigwho-measure.ack
with_perf() {
  rm -f $CTL $ACK; mkfifo $CTL $ACK
  perf record -e signal:signal_generate -a -o /tmp/sigwho-measure.perf -D -1 \
    --control fifo:$CTL,$ACK > /dev/null 2>&1 &
  local p=$!
  exec 7> $CTL 8< $ACK
  echo enable >&7; read -r _ <&8
  storm
  kill -INT $p; wait $p 2>/dev/null
  exec 7>&- 8<&-
  rm -f $CTL $ACK /tmp/sigwho-measure.perf
}
for r in $(seq 1 $R); do
  line="$(storm) $(with_perf)"
  for b in $BINS; do
    recorder_start "$b"
    line="$line $(storm)"
    recorder_stop
  done
  echo "$line"
done | BINS="$BINS" python3 -c '
import os,sys,statistics
names=["perf record"]+[os.path.basename(b) if os.path.basename(b)!="sigwho" else b for b in os.environ["BINS"].split()]
rows=[list(map(int,l.split())) for l in sys.stdin]
print("untraced median %.2f M/s over %d rounds" % (statistics.median(r[0] for r in rows)/1e6, len(rows)))
for i,n in enumerate(names,1):
    share=[r[i]/r[0] for r in rows]
    line="  %-28s share median %.2f (%s)" % (n, statistics.median(share), " ".join("%.2f"%x for x in share))
    if i>1:
        vs=[r[i]/r[1] for r in rows]
        line+="  ÷ perf median %.2f (%s)" % (statistics.median(vs), " ".join("%.2f"%x for x in vs))
    print(line)
'
