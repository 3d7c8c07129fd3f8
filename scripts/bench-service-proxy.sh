#!/bin/bash
# Requests/s and latency of http-echo straight to its pod and through its ClusterIP (the
# agent's userspace node proxy), with wrk, on a dev server in a network namespace of its own.
# Needs root, wrk and curl, target/debug/skiff (or SKIFF=path) and the built guests.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SKIFF:-$ROOT/target/debug/skiff}
GUESTS=$ROOT/wasm-examples/target/wasm32-wasip2/release
NS=skiff-proxy-bench-$$
DIR=$(mktemp -d)
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
in_ns() { ip netns exec "$NS" "$@"; }
skiff() { in_ns "$BIN" --server http://127.0.0.1:6443 "$@"; }
in_ns "$BIN" server --dev --data-dir "$DIR/data" --allow-image-dir "$GUESTS" >"$DIR/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true; ip netns del $NS; rm -rf $DIR' EXIT
for _ in $(seq 60); do skiff get nodes 2>/dev/null | grep -q Ready && break; sleep 1; done
sed "s#file:../target/wasm32-wasip2/release#file:$GUESTS#; s/replicas: 2/replicas: 1/" \
  "$ROOT/wasm-examples/http-echo/deployment.yaml" >"$DIR/deployment.yaml"
skiff apply -f "$DIR/deployment.yaml" -f "$ROOT/wasm-examples/http-echo/service.yaml" >/dev/null
field() { python3 -c "import json,sys; print(eval(sys.argv[1], {'o': json.load(sys.stdin)}))" "$1"; }
POD=
for _ in $(seq 60); do
  POD=$(skiff get pods -l app=http-echo -o json |
    field "next((p['status'].get('podIP','') for p in o['items'] if p['status'].get('phase')=='Running'), '')")
  [ -n "$POD" ] && break; sleep 1
done
CLUSTER_IP=$(skiff get svc http-echo -o json | field "o['spec']['clusterIP']")
for _ in $(seq 30); do in_ns curl -s -m2 "http://$CLUSTER_IP/" >/dev/null && break; sleep 1; done
echo "== direct to the pod: wrk -t2 -c16 -d10s --latency http://$POD:8080/"
in_ns wrk -t2 -c16 -d10s --latency "http://$POD:8080/"
echo "== through the ClusterIP: wrk -t2 -c16 -d10s --latency http://$CLUSTER_IP/"
in_ns wrk -t2 -c16 -d10s --latency "http://$CLUSTER_IP/"
