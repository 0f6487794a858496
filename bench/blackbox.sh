#!/usr/bin/env bash
# bench/blackbox.sh: the black-box figures of docs/benchmarks.md. Starts
# three `herald serve` processes on 127.0.0.1 (fresh data dirs), runs
# `herald bench --target` against the first one, samples every node's
# RssAnon and CPU time while it runs, stops the nodes, then (unless
# NO_PEER=1) runs the NATS JetStream peer of ../shared/peers/nats-peer.
#
#   bash bench/blackbox.sh [herald bench flags…]
#
# Environment: HERALD (a built binary; default: go build into $OUT),
# OUT (default /tmp/herald-blackbox), LOG_STORE (wal|bolt, default wal),
# SCENARIOS (default publish,publish-batch,deliver,deliver-live,latency),
# DURATION (8s), PEER (../shared/peers/nats-peer relative to the repo),
# BENCH (the binary that runs `herald bench`; default HERALD, so that an
# older release's nodes can be measured by today's load generator).
# LOG_STORE= (empty) passes no --raft-log-store (releases before it).
# STRACE=1 runs each node under `strace -f -c` counting fsync and
# fdatasync calls and their wall-clock time (summaries in $OUT/strace-nN.txt); the
# RssAnon figures of such a run are strace's, not the node's.
# Every address is on 127.0.0.1; the receiver is the bench's own.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/herald-blackbox}
LOG_STORE=${LOG_STORE-wal}
SCENARIOS=${SCENARIOS:-publish,publish-batch,deliver,deliver-live,latency}
DURATION=${DURATION:-8s}
PEER=${PEER:-$repo/../shared/peers/nats-peer}
rm -rf "$OUT" && mkdir -p "$OUT"
if [ -z "${HERALD:-}" ]; then
	(cd "$repo" && go build -o "$OUT/herald" ./cmd/herald)
	HERALD=$OUT/herald
fi
BENCH=${BENCH:-$HERALD}
store_flag=()
[ -n "$LOG_STORE" ] && store_flag=(--raft-log-store "$LOG_STORE")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

serve() { # n http raft [join flags…]
	local n=$1 http=$2 raft=$3
	shift 3
	local wrap=()
	[ "${STRACE:-}" = 1 ] && wrap=(strace -f --seccomp-bpf -c -w -e trace=fsync,fdatasync -o "$OUT/strace-n$n.txt")
	"${wrap[@]}" "$HERALD" serve --node-id "n$n" --data "$OUT/d$n" --http "127.0.0.1:$http" --raft "127.0.0.1:$raft" \
		"${store_flag[@]}" --delivery-allow 127.0.0.0/8 --log-level warn "$@" >"$OUT/n$n.log" 2>&1 &
	pids+=($!)
}
serve 1 28080 28081
for _ in $(seq 100); do [ -s "$OUT/d1/admin.key" ] && break; sleep 0.1; done # polling for the first start
key=$(cat "$OUT/d1/admin.key")
export HERALD_API_KEY=$key
serve 2 28090 28091 --join 127.0.0.1:28080 --join-token "$("$HERALD" cluster token --addr 127.0.0.1:28080 | tail -1)"
serve 3 28100 28101 --join 127.0.0.1:28080 --join-token "$("$HERALD" cluster token --addr 127.0.0.1:28080 | tail -1)"
for _ in $(seq 300); do # polling until three voters
	[ "$("$HERALD" cluster status --addr 127.0.0.1:28080 2>/dev/null | grep -cw voter || true)" -ge 3 ] && break
	sleep 0.1
done
"$HERALD" cluster status --addr 127.0.0.1:28080

# RssAnon (kB) and CPU ticks of each node, every 200 ms, while the bench runs.
sample() {
	while :; do
		for i in 0 1 2; do
			p=${pids[$i]}
			[ -r "/proc/$p/status" ] || continue
			rss=$(awk '/^RssAnon:/ {print $2}' "/proc/$p/status")
			cpu=$(awk '{print $14 + $15}' "/proc/$p/stat")
			echo "$(date +%s.%N) n$((i + 1)) $rss $cpu"
		done
		sleep 0.2
	done
}
sample >"$OUT/samples.txt" &
sampler=$!
"$BENCH" bench --target http://127.0.0.1:28080 --api-key "$key" --scenario "$SCENARIOS" --duration "$DURATION" \
	--subs 1 --deliveries 20000 --json "$OUT/bench.json" "$@" | tee "$OUT/bench.txt"
kill $sampler
for i in 1 2 3; do # each node's metrics after the run (stage latencies, apply times)
	curl -fsS -H "Authorization: Bearer $key" "http://127.0.0.1:$((28070 + 10 * i))/metrics" >"$OUT/metrics-n$i.txt" 2>/dev/null || true
done
hz=$(getconf CLK_TCK)
awk -v hz="$hz" '{ if ($3 > max[$2]) max[$2] = $3; if (!($2 in first)) first[$2] = $4; last[$2] = $4 }
	END { for (n in max) printf "%s: max RssAnon %.1f MB, CPU %.1f s\n", n, max[n] / 1024, (last[n] - first[n]) / hz }' \
	"$OUT/samples.txt" | sort | tee "$OUT/memory.txt"
du -sh "$OUT"/d1/* | tee "$OUT/disk.txt"
cleanup
pids=()
if [ "${NO_PEER:-}" != 1 ] && [ -d "$PEER" ]; then
	(cd "$PEER" && go run . -d "$DURATION") | tee "$OUT/nats.txt"
fi
