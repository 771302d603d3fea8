# Shared helpers for whole-system benchmarks. Source it; it expects BIN (the tidegate binary).
# Everything runs on 127.0.0.1. The system under test is pinned to CPU 0 and the load generator
# to CPU 1, so the two do not compete for one core.

SUT_CPU=${SUT_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
DURATION=${DURATION:-10}  # seconds of each measured run
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_engine PORT FLAGS... : starts `tidegate engine` pinned to SUT_CPU, waits for /health.
start_engine() {
  local port=$1; shift
  taskset -c "$SUT_CPU" "$BIN" engine --port "$port" --log-level warn "$@" >/dev/null &
  PIDS+=($!)
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && return 0; sleep 0.05; done
  echo "engine on $port did not start" >&2; return 1
}

# cpu_ticks PID: user+system clock ticks the process has used.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# wrk_run ARGS...: runs wrk pinned to LOAD_CPU with latency percentiles; prints its output.
wrk_run() { taskset -c "$LOAD_CPU" wrk --latency "$@"; }
wrk_rps() { awk '/^Requests\/sec:/ {print $2}'; }
# wrk_pct P: latency at percentile P (e.g. 50%, 99%) from `wrk --latency` output, in ms.
wrk_pct() {
  awk -v p="$1" '$1==p {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}'
}

# gateway_config NAME ENGINE_PORT SPEC_EXTRA [DOCS]: writes $TMP/NAME.yaml, a gateway with pool
# p, model m and the engine at ENGINE_PORT on free ports; SPEC_EXTRA is appended inside the
# Gateway spec (", workers: 2"), DOCS after the documents. Sets PORT[NAME] and ADMIN[NAME].
declare -A PORT PID ADMIN
gateway_config() {
  local name=$1 eport=$2 extra=$3 docs=${4:-}
  PORT[$name]=$(free_port)
  ADMIN[$name]=$(free_port)
  cat > "$TMP/$name.yaml" <<YAML
apiVersion: tidegate.io/v1alpha1
kind: Gateway
metadata: {name: bench}
spec: {listen: "127.0.0.1:${PORT[$name]}", admin: "127.0.0.1:${ADMIN[$name]}"$extra}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: p}
spec: {targetPortNumber: 8000, selector: {app: bench}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: m}
spec: {modelName: m, poolRef: {name: p}}
---
apiVersion: tidegate.io/v1alpha1
kind: Endpoints
metadata: {name: e, labels: {app: bench}}
spec: {addresses: ["127.0.0.1:$eport"]}
$docs
YAML
}

# start_gateway NAME ENGINE_PORT SPEC_EXTRA [DOCS]: starts `tidegate serve` on gateway_config's
# file and waits for /readyz; sets PORT[NAME], ADMIN[NAME] and PID[NAME].
start_gateway() {
  local name=$1
  gateway_config "$@"
  "$BIN" serve -c "$TMP/$name.yaml" --log-level warn >/dev/null &
  PIDS+=($!)
  PID[$name]=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:${ADMIN[$name]}/readyz" >/dev/null && return 0; sleep 0.05; done
  echo "gateway $name did not become ready" >&2; return 1
}

# nginx_proxy_config ENGINE_PORT PROCESS_LINES SERVER_LINE...: writes $TMP/nginx.conf, nginx as
# the baseline reverse proxy of the comparisons — keep-alive to the engine at ENGINE_PORT,
# `proxy_buffering off` — with PROCESS_LINES at the top ("worker_processes 2;") and the given
# lines (listen, ssl_*) in its server block.
nginx_proxy_config() {
  local eport=$1 process_lines=$2; shift 2
  local server_lines
  server_lines=$(printf '    %s\n' "$@")
  cat > "$TMP/nginx.conf" <<CONF
$process_lines
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $TMP;
  proxy_temp_path $TMP;
  keepalive_requests 1000000;
  upstream engine { server 127.0.0.1:$eport; keepalive 256; keepalive_requests 1000000; }
  server {
$server_lines
    location / {
      proxy_pass http://engine;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
}

# start_nginx_proxy ENGINE_PORT SERVER_LINE...: nginx_proxy_config's nginx with 2 workers,
# started. Sets NGINX_PIDS to its worker processes.
start_nginx_proxy() {
  local eport=$1; shift
  nginx_proxy_config "$eport" "worker_processes 2;" "$@"
  nginx -c "$TMP/nginx.conf" -p "$TMP" &
  PIDS+=($!)
  sleep 0.5
  NGINX_PIDS=$(pgrep -P "$(cat "$TMP/nginx.pid")" | tr '\n' ' ')
}
