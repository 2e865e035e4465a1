#!/usr/bin/env bash
# Loopback load measurement: requests/s straight to a stand-in vendor, through
# a plain hyper forwarding proxy (the least a proxy can do), and through the
# gateway (pass-through GET, and a decided Kore.ai erasure call).
# Rounds alternate so that machine noise hits all variants alike; medians.
#
#   bench/load.sh [ROUNDS] [DURATION]     e.g. bench/load.sh 5 10s
#
# Needs wrk (apt-get install wrk) and python3 (to make a test JWT).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
DURATION=${2:-10s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
UP=127.0.0.1:18081
GW=127.0.0.1:18080
ADMIN=127.0.0.1:18090
PLAIN=127.0.0.1:18082

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
cargo build --release --locked --quiet --bin erasure-gateway --example stand_in --example plain_proxy

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
secret="bench-only-hs256-secret-0123456789abcdef"
printf '%s' "$secret" > "$work/jwt-secret"
cat > "$work/gateway.toml" <<TOML
[proxy]
listen = "$GW"
max_concurrency = 4096
[admin]
listen = "$ADMIN"
[policies]
dir = "$PWD/policies"
[jwt]
algorithm = "HS256"
secret_file = "$work/jwt-secret"
[[caller]]
id = "bench-officer"
roles = ["privacy-officer"]
[[upstream]]
name = "kore"
profile = "kore"
url = "http://$UP"
path_prefix = "/kore"
TOML
export KORE_JWT=$(python3 - "$secret" <<'PY'
import base64, hashlib, hmac, json, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": "bench-officer", "exp": int(time.time()) + 3600}).encode())
sig = b64(hmac.new(sys.argv[1].encode(), head + b"." + body, hashlib.sha256).digest())
print((head + b"." + body + b"." + sig).decode())
PY
)

target/release/examples/stand_in "$UP" 2>/dev/null &
target/release/examples/plain_proxy "$PLAIN" "http://$UP" 2>/dev/null &
RUST_LOG=warn target/release/erasure-gateway serve --config "$work/gateway.toml" &
for _ in $(seq 50); do
  curl -fs "http://$ADMIN/readyz" >/dev/null 2>&1 && break || sleep 0.1
done

rps() {
  local out
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "$@")
  # A benchmark of refusals would measure the wrong thing: insist on 2xx.
  if grep -q "Non-2xx" <<<"$out"; then echo "non-2xx answers in: wrk $*" >&2; echo "$out" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
declare -a direct plain pass erase
for r in $(seq "$ROUNDS"); do
  direct+=("$(rps "http://$UP/api/public/bot/users")")
  plain+=("$(rps "http://$PLAIN/api/public/bot/users")")
  pass+=("$(rps "http://$GW/kore/api/public/bot/users")")
  erase+=("$(rps -s bench/kore-erase.lua "http://$GW")")
  echo "round $r: direct ${direct[-1]}  plain-proxy ${plain[-1]}  gateway-pass-through ${pass[-1]}  gateway-erasure ${erase[-1]}"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
d=$(median "${direct[@]}"); b=$(median "${plain[@]}"); p=$(median "${pass[@]}"); e=$(median "${erase[@]}")
echo
echo "medians over $ROUNDS rounds of $DURATION, $CONNS connections, $THREADS wrk threads:"
printf '                                             vs direct  vs plain proxy\n'
printf '  direct to stand-in        %10.0f req/s  1.00\n' "$d"
printf '  plain hyper proxy         %10.0f req/s  %.2f       1.00\n' "$b" "$(echo "$b / $d" | bc -l)"
printf '  gateway, pass-through     %10.0f req/s  %.2f       %.2f\n' "$p" "$(echo "$p / $d" | bc -l)" "$(echo "$p / $b" | bc -l)"
printf '  gateway, erasure decided  %10.0f req/s  %.2f       %.2f\n' "$e" "$(echo "$e / $d" | bc -l)" "$(echo "$e / $b" | bc -l)"
