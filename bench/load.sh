#!/usr/bin/env bash
# End-to-end load on loopback, in one go, with nginx as the fast stand-in
# vendor and nginx `proxy_pass` as the proxy to beat:
#
#   1. throughput at 32 connections (wrk -t1 -c32): direct to the vendor,
#      nginx proxy_pass, a plain hyper proxy (examples/plain_proxy.rs),
#      gateway pass-through, a 10-target Seam erasure allowed (durable,
#      group-committed trail), the same call denied; rounds alternate so
#      machine noise hits every variant alike; medians and ratios;
#   2. 1,000 keep-alive connections through the gateway: its RSS;
#   3. the scale table: the same 10-target erasure at one connection
#      (wrk -t1 -c1 --latency) as policies and entities grow
#      (../shared/bench/gen_scale.py shapes): p50, p99 (and its distance
#      from the shipped set's), req/s, timeouts, time to ready, RSS, and the
#      entity file's size; rows interleave over SCALE_ROUNDS rounds, medians;
#   4. a reload of the largest set under load: how long it takes and what
#      the requests in flight meanwhile saw.
#
#   bench/load.sh [ROUNDS] [DURATION]        defaults: 3 rounds of 4s
#   SCALE_DURATION=5s SCALE_ROUNDS=3 SCALE="0:0 1000:100000" bench/load.sh
#   SCALE_TRAIL=/dev/shm bench/load.sh       the scale table's trails on
#      tmpfs, where fsync costs nothing: the gateway's own share of each
#      row's latency, without the disk's flush times (the issue's table
#      keeps the trail on disk; run both)
#
# Needs wrk and nginx (Debian packages; installed when missing and run as
# root) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
DURATION=${2:-4s}
SCALE_DURATION=${SCALE_DURATION:-5s}
SCALE_ROUNDS=${SCALE_ROUNDS:-3}
SCALE=${SCALE:-"0:0 0:10000 0:100000 1000:0 1000:100000 10000:100000"}
SCALE_TRAIL=${SCALE_TRAIL:-}
GEN=${GEN:-../shared/bench/gen_scale.py}
VENDOR=127.0.0.1:18181
NGINX_PROXY=127.0.0.1:18182
PLAIN=127.0.0.1:18183
GW=127.0.0.1:18180
ADMIN=127.0.0.1:18190

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]} (Debian packages)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (apt-get install ${need[*]})" >&2
    exit 2
  fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -f "$GEN" ] || { echo "no $GEN: set GEN=path/to/gen_scale.py" >&2; exit 2; }
cargo build --release --locked --quiet --bin erasure-gateway --example plain_proxy

work=$(mktemp -d)
trails=$work
scale_trails=$work
if [ -n "$SCALE_TRAIL" ]; then
  scale_trails=$(mktemp -d -p "$SCALE_TRAIL")
fi
gw_pid=
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  for d in vendor proxy; do
    [ -f "$work/$d/nginx.pid" ] && kill "$(cat "$work/$d/nginx.pid")" 2>/dev/null || true
  done
  rm -rf "$work" "$scale_trails"
}
trap cleanup EXIT

# nginx: two workers each, as the vendor (a fixed 200) and as the proxy.
nginx_conf() { # DIR LISTEN LOCATION-BODY
  mkdir -p "$1/logs"
  cat > "$1/nginx.conf" <<NGINX
worker_processes 2;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1; proxy_temp_path $1; fastcgi_temp_path $1;
  uwsgi_temp_path $1; scgi_temp_path $1;
  keepalive_requests 1000000;
  upstream vendor { server $VENDOR; keepalive 64; }
  server { listen $2; location / { $3 } }
}
NGINX
  "$NGINX" -p "$1" -c "$1/nginx.conf"
}
nginx_conf "$work/vendor" "$VENDOR" "default_type application/json; return 200 '{\"ok\":true}';"
nginx_conf "$work/proxy" "$NGINX_PROXY" 'proxy_pass http://vendor; proxy_http_version 1.1; proxy_set_header Connection "";'
target/release/examples/plain_proxy "$PLAIN" "http://$VENDOR" 2>/dev/null &
plain_pid=$!

# Seam callers: an API key allowed by the shipped policies, a personal
# access token without a workspace (denied: seam-pat-requires-workspace).
export SEAM_KEY=seam_bench_key_0123456789
export SEAM_PAT=seam_at_bench_0123456789
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
gateway_config() { # POLICY_DIR TRAIL_DIR
  cat <<TOML
[proxy]
listen = "$GW"
max_concurrency = 4096
[admin]
listen = "$ADMIN"
[policies]
dir = "$1"
[audit]
path = "$2/decisions.jsonl"
[[caller]]
id = "privacy-ops"
token_sha256 = "$(sha "$SEAM_KEY")"
roles = ["privacy-officer"]
[[caller]]
id = "privacy-ops-pat"
token_sha256 = "$(sha "$SEAM_PAT")"
roles = ["privacy-officer"]
[[upstream]]
name = "seam"
profile = "seam"
url = "http://$VENDOR"
path_prefix = "/seam"
TOML
}
# Starts the gateway on POLICY_DIR; sets gw_pid, and ready to the seconds
# until /readyz answered.
start_gateway() {
  local dir=$1 trail
  trail=$(mktemp -d -p "$trails")
  gateway_config "$dir" "$trail" > "$trail/gateway.toml"
  local t0
  t0=$(date +%s.%N)
  RUST_LOG=warn target/release/erasure-gateway serve --config "$trail/gateway.toml" 2>"$trail/stderr" &
  gw_pid=$!
  for _ in $(seq 1200); do
    if curl -fs "http://$ADMIN/readyz" >/dev/null 2>&1; then
      ready=$(echo "$(date +%s.%N) - $t0" | bc)
      return
    fi
    kill -0 "$gw_pid" 2>/dev/null || { cat "$trail/stderr" >&2; exit 1; }
    sleep 0.05
  done
  echo "gateway on $dir not ready after 60 s" >&2
  exit 1
}
stop_gateway() { kill "$gw_pid" 2>/dev/null; wait "$gw_pid" 2>/dev/null || true; gw_pid=; }
rss_mib() { awk -v k="$2" '$1 == k":" {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

# wrk, checked: every answer 2xx (or, with DENY=1, every answer not 2xx),
# no socket errors. Prints wrk's output.
run_wrk() {
  local out
  out=$(wrk "$@")
  if [ "${DENY:-0}" = 1 ]; then
    local total non
    total=$(awk '/requests in/ {print $1}' <<<"$out")
    non=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    [ "${non:-0}" = "$total" ] || { echo "an answer was 2xx in: wrk $*" >&2; echo "$out" >&2; exit 1; }
  elif grep -q "Non-2xx" <<<"$out"; then
    echo "non-2xx answers in: wrk $*" >&2; echo "$out" >&2; exit 1
  fi
  echo "$out"
}
rps() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
# A latency percentile from `wrk --latency`, in µs.
pct() {
  awk -v p="$2%" '$1 == p {
    v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
    if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1000000; else f = 60000000;
    printf "%.0f", v * f }' <<<"$1"
}
# Requests wrk gave up on (its "Socket errors: ... timeout N"), 0 if none.
timeouts() { awk '/Socket errors/ {for (i = 1; i <= NF; i++) if ($i == "timeout") t = $(i + 1)} END {print t + 0}' <<<"$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }

export SEAM_BODY
SEAM_BODY=$(python3 -c 'import json; print(json.dumps({"customer_keys": [f"customer-{i}" for i in range(10)]}))')
ALLOW=bench/seam-erase.lua
echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ)"

# 1. Throughput.
shipped=$work/shipped
python3 "$GEN" "$shipped" --policies 0 --entities 0 --from policies >/dev/null
start_gateway "$shipped"
# A proxy's CPU time (user + system, all threads of the given processes)
# per request of one wrk run, in µs: steadier than requests/s on a shared
# machine, where wrk and nginx take the same cores. Sets `last` to wrk's
# output and `cpu` to the µs (no subshell, so that both stay set).
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
cpu_per_request() { # "PIDS" wrk-args...
  local pids=$1 t0 t1 n
  shift
  t0=$(ticks $pids)
  last=$(run_wrk "$@")
  t1=$(ticks $pids)
  n=$(awk '/requests in/ {print $1}' <<<"$last")
  cpu=$(( (t1 - t0) * 1000000 / $(getconf CLK_TCK) / n ))
}
nginx_workers=$(pgrep -P "$(cat "$work/proxy/nginx.pid")" | tr '\n' ' ')
declare -a direct nginx plain pass allow deny nginx_cpu plain_cpu pass_cpu allow_cpu deny_cpu
for r in $(seq "$ROUNDS"); do
  direct+=("$(rps "$(run_wrk -t1 -c32 -d"$DURATION" "http://$VENDOR/api/v1/things")")")
  cpu_per_request "$nginx_workers" -t1 -c32 -d"$DURATION" "http://$NGINX_PROXY/api/v1/things"
  nginx+=("$(rps "$last")"); nginx_cpu+=("$cpu")
  cpu_per_request "$plain_pid" -t1 -c32 -d"$DURATION" "http://$PLAIN/api/v1/things"
  plain+=("$(rps "$last")"); plain_cpu+=("$cpu")
  cpu_per_request "$gw_pid" -t1 -c32 -d"$DURATION" "http://$GW/seam/api/v1/things"
  pass+=("$(rps "$last")"); pass_cpu+=("$cpu")
  SEAM_TOKEN=$SEAM_KEY cpu_per_request "$gw_pid" -t1 -c32 -d"$DURATION" -s "$ALLOW" "http://$GW"
  allow+=("$(rps "$last")"); allow_cpu+=("$cpu")
  DENY=1 SEAM_TOKEN=$SEAM_PAT cpu_per_request "$gw_pid" -t1 -c32 -d"$DURATION" -s "$ALLOW" "http://$GW"
  deny+=("$(rps "$last")"); deny_cpu+=("$cpu")
  echo "round $r: direct ${direct[-1]}  nginx ${nginx[-1]}  plain-hyper ${plain[-1]}  pass-through ${pass[-1]}  erasure-allow ${allow[-1]}  erasure-deny ${deny[-1]}  (CPU µs/request: nginx ${nginx_cpu[-1]}, plain ${plain_cpu[-1]}, gateway ${pass_cpu[-1]} ${allow_cpu[-1]} ${deny_cpu[-1]})"
done
d=$(median "${direct[@]}"); n=$(median "${nginx[@]}"); h=$(median "${plain[@]}")
p=$(median "${pass[@]}"); a=$(median "${allow[@]}"); x=$(median "${deny[@]}")
echo
echo "== throughput: medians of $ROUNDS rounds, wrk -t1 -c32 -d$DURATION, nginx (2 workers) as the vendor"
printf '  %-34s %9s   %-9s %-9s %s\n' "" "req/s" "vs direct" "vs nginx" "vs pass-through"
printf '  %-34s %9.0f   %-9s\n' "direct to the vendor" "$d" 1.00
printf '  %-34s %9.0f   %-9s %-9s\n' "nginx proxy_pass" "$n" "$(ratio "$n" "$d")" 1.00
printf '  %-34s %9.0f   %-9s %-9s\n' "plain hyper proxy" "$h" "$(ratio "$h" "$d")" "$(ratio "$h" "$n")"
printf '  %-34s %9.0f   %-9s %-9s %s\n' "gateway pass-through" "$p" "$(ratio "$p" "$d")" "$(ratio "$p" "$n")" 1.00
printf '  %-34s %9.0f   %-9s %-9s %s\n' "gateway erasure allowed (10 keys)" "$a" "$(ratio "$a" "$d")" "$(ratio "$a" "$n")" "$(ratio "$a" "$p")"
printf '  %-34s %9.0f   %-9s %-9s %s\n' "gateway erasure denied" "$x" "$(ratio "$x" "$d")" "$(ratio "$x" "$n")" "$(ratio "$x" "$p")"

echo "  CPU per request (user + system, medians): nginx proxy_pass $(median "${nginx_cpu[@]}") µs, plain hyper proxy $(median "${plain_cpu[@]}") µs;"
echo "    gateway pass-through $(median "${pass_cpu[@]}") µs, erasure allowed $(median "${allow_cpu[@]}") µs, denied $(median "${deny_cpu[@]}") µs"

# p99 of pass-through against nginx at 32 connections, same run.
np=$(pct "$(run_wrk -t1 -c32 -d"$DURATION" --latency "http://$NGINX_PROXY/api/v1/things")" 99)
gp=$(pct "$(run_wrk -t1 -c32 -d"$DURATION" --latency "http://$GW/seam/api/v1/things")" 99)
echo "  p99 at 32 connections: nginx proxy_pass ${np} µs, gateway pass-through ${gp} µs"

# 2. 1,000 keep-alive connections.
before=$(rss_mib "$gw_pid" VmRSS)
run_wrk -t1 -c1000 -d"$DURATION" "http://$GW/seam/api/v1/things" >/dev/null &
sleep "$(( ${DURATION%s} / 2 ))"
during=$(rss_mib "$gw_pid" VmRSS)
wait $!
echo
echo "== 1,000 keep-alive connections through the gateway: RSS ${before} MiB idle, ${during} MiB under load, peak $(rss_mib "$gw_pid" VmHWM) MiB"
stop_gateway

# 3. The scale table: rows interleaved round by round (one connection with
# fsync on moves a p99 by hundreds of µs between runs); medians per row, and
# each row's median p99 against the first row's (the shipped set).
echo
trails=$scale_trails
if [ -n "$SCALE_TRAIL" ]; then
  where="trail under $SCALE_TRAIL ($(df --output=fstype "$scale_trails" | tail -1))"
else
  where="durable trail"
fi
echo "== scale: 10-target Seam erasure, wrk -t1 -c1 -d$SCALE_DURATION --latency, $where; medians of $SCALE_ROUNDS interleaved rounds"
declare -A s_p50 s_p99 s_rps s_timeouts s_ready s_rss
for pair in $SCALE; do
  pol=${pair%%:*}; ent=${pair##*:}
  python3 "$GEN" "$work/scale-$pol-$ent" --policies "$pol" --entities "$ent" --from policies >/dev/null
done
for r in $(seq "$SCALE_ROUNDS"); do
  for pair in $SCALE; do
    pol=${pair%%:*}; ent=${pair##*:}
    dir=$work/scale-$pol-$ent
    start_gateway "$dir"
    out=$(SEAM_TOKEN=$SEAM_KEY run_wrk -t1 -c1 -d"$SCALE_DURATION" --latency -s "$ALLOW" "http://$GW")
    s_p50[$pair]+="$(pct "$out" 50) "; s_p99[$pair]+="$(pct "$out" 99) "; s_rps[$pair]+="$(rps "$out") "
    s_timeouts[$pair]+="$(timeouts "$out") "; s_ready[$pair]+="$ready "; s_rss[$pair]+="$(rss_mib "$gw_pid" VmRSS) "
    last_dir=$dir
    stop_gateway
  done
  echo "  round $r: p99 µs $(for pair in $SCALE; do printf '%s=%s ' "$pair" "$(awk '{print $NF}' <<<"${s_p99[$pair]}")"; done)"
done
printf '  %-19s %9s %9s %13s %8s %8s %8s %9s %10s\n' "policies/entities" "p50 µs" "p99 µs" "p99 vs first" "req/s" "timeouts" "ready s" "RSS MiB" "file MiB"
first=
for pair in $SCALE; do
  pol=${pair%%:*}; ent=${pair##*:}
  p99=$(median ${s_p99[$pair]})
  first=${first:-$p99}
  timed_out=0; for t in ${s_timeouts[$pair]}; do timed_out=$((timed_out + t)); done
  file=$(stat -c %s "$work/scale-$pol-$ent/entities.json")
  printf '  %-19s %9.0f %9.0f %+13.0f %8.0f %8s %8.2f %9s %10.1f\n' "$((pol + 6)) / $ent" "$(median ${s_p50[$pair]})" "$p99" \
    "$(echo "$p99 - $first" | bc -l)" "$(median ${s_rps[$pair]})" "$timed_out" "$(median ${s_ready[$pair]})" \
    "$(median ${s_rss[$pair]})" "$(echo "$file / 1048576" | bc -l)"
done

# 4. Reload of the largest set while requests flow.
start_gateway "$last_dir"
touch "$last_dir/generated.cedar"
SEAM_TOKEN=$SEAM_KEY run_wrk -t1 -c1 -d"$SCALE_DURATION" --latency -s "$ALLOW" "http://$GW" > "$work/reload-wrk" &
sleep 1
t0=$(date +%s.%N)
curl -fs -X POST "http://$ADMIN/v1/reload" >/dev/null
took=$(echo "$(date +%s.%N) - $t0" | bc)
wait $!
out=$(cat "$work/reload-wrk")
echo
echo "== reload of ${last_dir##*/scale-} under load: POST /v1/reload took ${took} s; meanwhile p50 $(pct "$out" 50) µs, p99 $(pct "$out" 99) µs, max $(awk '/Latency/ && !/Distribution/ {print $4; exit}' <<<"$out"), $(rps "$out") req/s"
stop_gateway
