#!/usr/bin/env bash
# /api/me/ (revocation view + user cache) next to the no-auth JWKS route, same
# server, alternating 10 s wrk runs (16 connections, 2 threads), 3 rounds each.
set -euo pipefail
# Build first: cargo build --release --example server. Usage: scripts/me_vs_noauth.sh sqlite|postgres
db="$1"; dir=$(mktemp -d)
case "$db" in
  sqlite) url="sqlite://$dir/bench.db" ;;
  postgres) url="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}" ;;
esac
prefix="mebench_$(date +%s)_"
BIND=127.0.0.1:0 DATABASE_URL="$url" TABLE_PREFIX="$prefix" RUST_LOG=warn \
  JWT_SECRET="a benchmark secret of at least thirty-two bytes" \
  "$(dirname "$0")/../target/release/examples/server" > "$dir/out" 2> "$dir/err" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do grep -q "listening on" "$dir/out" && break; sleep 0.1; done
base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$dir/out" | head -1)
curl -s -X POST "$base/api/users/" -H 'content-type: application/json' -d '{"username":"bench","password":"correct horse battery"}' >/dev/null
access=$(curl -s -X POST "$base/api/token/" -H 'content-type: application/json' -d '{"username":"bench","password":"correct horse battery"}' | sed -n 's/.*"access":"\([^"]*\)".*/\1/p')
test "$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $access" "$base/api/me/")" = 200
wrk -t2 -c16 -d3s "$base/.well-known/jwks.json" >/dev/null
for round in 1 2 3; do
  for path in /.well-known/jwks.json /api/me/; do
    rps=$(wrk -t2 -c16 -d10s -H "authorization: Bearer $access" "$base$path" | awk '/Requests\/sec/ {print $2}')
    echo "$db round $round $path $rps"
  done
done
if [ "$db" = postgres ]; then
  for t in users jwt_auth_refresh_tokens jwt_auth_sessions jwt_auth_user_cutoffs jwt_auth_schema_versions jwt_auth_revocations; do
    psql -q "$url" -c "DROP TABLE IF EXISTS \"${prefix}$t\" CASCADE" >/dev/null 2>&1 || true
  done
fi
