# Sourced by ab.sh and cpu.sh: `sigwho record` started and stopped around a measurement.
# recorder_start BIN: starts BIN's recorder on a scratch journal and returns once it says
# it is recording (RECORDER is its pid); recorder_stop: SIGINT, and waits for it.
recorder_start() {
  rm -f /tmp/sigwho-measure.journal*
  "$1" record --journal /tmp/sigwho-measure.journal > /dev/null 2> /tmp/sigwho-measure.err &
  RECORDER=$!
  for _ in $(seq 1 100); do grep -q "recording" /tmp/sigwho-measure.err && return; sleep 0.1; done
}
recorder_stop() {
  kill -INT "$RECORDER"; wait "$RECORDER" 2>/dev/null
}
