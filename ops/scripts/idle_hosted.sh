#!/bin/bash
# Idle cost of N stores hosted in one process: enrol N stores, start a hub and `node host`,
# wait until every store is connected, then sample RSS and CPU for 60 s.
# Usage: cargo build --release -p ops && ops/scripts/idle_hosted.sh 457
N=${1:-457}
O=${OPS:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/ops}
D=${TMPDIR:-/tmp}/idle$N; rm -rf "$D"; mkdir -p "$D"; cd "$D" || exit 1
$O pki init --dir pki > /dev/null
printf 'data_dir = "hub-data"\nca_cert = "pki/ca.pem"\ncert = "pki/hub.pem"\nkey = "pki/hub.key"\nopen_before_logins = true\n' > hub.toml
RUST_LOG=warn $O hub run --config hub.toml --sync-listen 127.0.0.1:17443 --http-listen 127.0.0.1:18090 > hub.out 2> hub.err &
HUB=$!
ARGS=()
for i in $(seq 1 $N); do s=$(printf "S%04d" $i); $O pki enrol --dir pki --store $s --hub 127.0.0.1:17443 --out $s > /dev/null; ARGS+=(--config $s/node.toml); done
T0=$(date +%s.%N)
RUST_LOG=warn $O node host "${ARGS[@]}" --any-port > host.out 2> host.err &
HOST=$!
until grep -q "^hosting" host.out 2>/dev/null; do sleep 0.5; kill -0 $HOST 2>/dev/null || { echo "host died"; tail host.err; exit 1; }; done
T1=$(date +%s.%N)
until [ "$(curl -s -H 'x-staff-id: x' http://127.0.0.1:18090/api/v1/stores | python3 -c 'import json,sys; print(sum(s["connected"] for s in json.load(sys.stdin)["stores"]))' 2>/dev/null)" = "$N" ]; do sleep 1; done
T2=$(date +%s.%N)
echo "listening after $(echo "$T1-$T0" | bc) s, all $N connected after $(echo "$T2-$T0" | bc) s"
sleep 10
tick=$(getconf CLK_TCK)
c0=$(awk '{print $14+$15}' /proc/$HOST/stat); h0=$(awk '{print $14+$15}' /proc/$HUB/stat)
sleep 60
c1=$(awk '{print $14+$15}' /proc/$HOST/stat); h1=$(awk '{print $14+$15}' /proc/$HUB/stat)
echo "host: RSS $(grep VmRSS /proc/$HOST/status | awk '{print $2/1024}') MB, threads $(grep Threads /proc/$HOST/status | awk '{print $2}'), CPU over 60 s idle: $(echo "scale=3; ($c1-$c0)/$tick/60*100" | bc)% of a core"
echo "hub: RSS $(grep VmRSS /proc/$HUB/status | awk '{print $2/1024}') MB, CPU over 60 s idle: $(echo "scale=3; ($h1-$h0)/$tick/60*100" | bc)% of a core"
grep -c WARN host.err hub.err
kill $HOST; wait $HOST; kill $HUB; wait $HUB
