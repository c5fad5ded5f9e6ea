#!/usr/bin/env bash
# Journey 2, click & collect, on the embedded stack: an app order picked up in a store.
#
# Builds `omni`, starts `omni up` in the background (embedded: SQLite in a temp directory,
# in-process bus; ports chosen by the OS), waits for its ready line, then walks the journey
# with the CLI, printing each command and its output:
#   availability -> app order for pickup -> store queue -> mark ready (pickup code)
#   -> wrong code refused -> right code hands it over -> points earned (polled: they arrive
#   asynchronously from order.completed) -> the order with its routing explanation.
# Stops the server by its PID and removes the temp directory, whatever happens.
#
# Environment: CARGO_TARGET_DIR (default ~/.cache/omni-target), OMNI_DEMO_PROFILE
# (debug | release, default debug), OMNI_DEMO_DEADLINE (seconds per wait, default 60).
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/omni-target}
readonly PROFILE=${OMNI_DEMO_PROFILE:-debug}
readonly DEADLINE=${OMNI_DEMO_DEADLINE:-60}
readonly PHONE=+8613800138000
readonly STORE=store-sh-jingan

if [[ $PROFILE == release ]]; then
  cargo build --quiet --release -p omni
else
  cargo build --quiet -p omni
fi
readonly OMNI=$CARGO_TARGET_DIR/$PROFILE/omni

DATA=$(mktemp -d "${TMPDIR:-/tmp}/omni-demo.XXXXXX")
readonly DATA LOG=$DATA/up.out
SERVER_PID=

stop_server() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -INT "$SERVER_PID"
    local waited=0
    while kill -0 "$SERVER_PID" 2>/dev/null; do
      if ((waited >= DEADLINE * 10)); then
        echo "omni up did not stop within ${DEADLINE}s; killing it" >&2
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        break
      fi
      sleep 0.1
      waited=$((waited + 1))
    done
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}
cleanup() {
  stop_server
  rm -rf "$DATA"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
# Prints the command, runs it, prints its output; the output is also left in $OUT.
OUT=
show() {
  printf '$ omni %s\n' "$*"
  OUT=$("$OMNI" "$@")
  printf '%s\n' "$OUT"
}
field() { awk -v k="$1" 'index($0, k " ") == 1 { sub(k "[ ]+", ""); print; exit }' <<<"$OUT"; }

step "start omni up (embedded, data in $DATA)"
"$OMNI" up --data-dir "$DATA" --inventory-port 0 --orders-port 0 --member-port 0 \
  >"$LOG" 2>"$DATA/up.err" &
SERVER_PID=$!
waited=0
until grep -q '^omni is up' "$LOG" 2>/dev/null; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "omni up exited before it was ready:" >&2
    cat "$LOG" "$DATA/up.err" >&2
    exit 1
  fi
  if ((waited >= DEADLINE * 10)); then
    echo "omni up was not ready within ${DEADLINE}s" >&2
    exit 1
  fi
  sleep 0.1
  waited=$((waited + 1))
done
sed -n '/^omni up (/,$p' "$LOG"

OMNI_INVENTORY_ADDR=$(awk '$1 == "inventory" { print $2 }' "$LOG")
OMNI_ORDERS_ADDR=$(awk '$1 == "order-routing" { print $2 }' "$LOG")
OMNI_MEMBER_ADDR=$(awk '$1 == "member" { print $2 }' "$LOG")
export OMNI_INVENTORY_ADDR OMNI_ORDERS_ADDR OMNI_MEMBER_ADDR
ADMIN_TOKEN=$(sed -n 's/.*export OMNI_TOKEN=//p' "$LOG")
APP_TOKEN=$("$OMNI" token mint --role channel:app --ttl 1h --secret-file "$DATA/jwt-secret")
STORE_TOKEN=$("$OMNI" token mint --role "store:$STORE" --ttl 1h --secret-file "$DATA/jwt-secret")

step "the app sees sneakers across its pool"
OMNI_TOKEN=$APP_TOKEN show availability SNEAKER-42 --channel app

step "the customer's points before the order"
OMNI_TOKEN=$ADMIN_TOKEN show member balance "$PHONE"
BEFORE=$(field balance)

step "the app places a click & collect order at $STORE"
OMNI_TOKEN=$APP_TOKEN show order place --channel app --sku SNEAKER-42:1:59900 \
  --pickup "$STORE" --member "$PHONE"
ORDER=$(field order)

step "the store's pickup queue"
OMNI_TOKEN=$STORE_TOKEN show store queue "$STORE"

step "staff mark it ready; the customer gets the pickup code"
OMNI_TOKEN=$STORE_TOKEN show store ready "$STORE" "$ORDER"
CODE=$(field "pickup code")
WRONG=000000
[[ $CODE == "$WRONG" ]] && WRONG=111111

step "the customer first says the wrong code"
printf '$ omni store confirm %s %s %s\n' "$STORE" "$ORDER" "$WRONG"
if OMNI_TOKEN=$STORE_TOKEN "$OMNI" store confirm "$STORE" "$ORDER" "$WRONG"; then
  echo "a wrong pickup code was accepted" >&2
  exit 1
else
  echo "(refused, exit code $?)"
fi

step "then the right one: handed over"
OMNI_TOKEN=$STORE_TOKEN show store confirm "$STORE" "$ORDER" "$CODE"
[[ $(field status) == PICKED_UP ]] || { echo "order is not PICKED_UP" >&2; exit 1; }

step "points are earned at handover (from order.completed, asynchronously)"
waited=0
while :; do
  OUT=$(OMNI_TOKEN=$ADMIN_TOKEN "$OMNI" member balance "$PHONE")
  [[ $(field balance) -gt $BEFORE ]] && break
  if ((waited >= DEADLINE * 10)); then
    echo "no points earned within ${DEADLINE}s (balance still $BEFORE)" >&2
    exit 1
  fi
  sleep 0.1
  waited=$((waited + 1))
done
OMNI_TOKEN=$ADMIN_TOKEN show member balance "$PHONE"
OMNI_TOKEN=$ADMIN_TOKEN show member ledger "$PHONE"

step "the order, and why it was routed where it was"
OMNI_TOKEN=$APP_TOKEN show order show "$ORDER"

step "stop omni up"
stop_server
tail -n 2 "$LOG"
echo "demo complete"
