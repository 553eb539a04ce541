#!/usr/bin/env bash
# dsocr pull without a network: clear one-line errors for an unreachable endpoint and a bad name.
# (Downloads themselves are tested against a fake hub in tests/test_hub.cpp.)
set -euo pipefail
BIN=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$BIN" pull --help | grep -q "HF_ENDPOINT"

expect_error() {  # expect_error PATTERN COMMAND...
  local pattern=$1; shift
  set +e
  err=$("$@" 2>&1 >/dev/null); rc=$?
  set -e
  [ $rc -eq 1 ] || { echo "expected exit 1, got $rc: $err"; exit 1; }
  [ "$(wc -l <<<"$err")" -eq 1 ] || { echo "error is not one line: $err"; exit 1; }
  grep -qF -- "$pattern" <<<"$err" || { echo "expected '$pattern' in: $err"; exit 1; }
}

# Port 1 on the loopback interface: nothing listens there.
HF_ENDPOINT=http://127.0.0.1:1 expect_error \
  "dsocr: error: cannot reach http://127.0.0.1:1 (is the machine offline? set HF_ENDPOINT for a mirror)" \
  "$BIN" pull --quiet --cache "$tmp"
HF_ENDPOINT=http://127.0.0.1:1 expect_error "not a hub repository name" "$BIN" pull -q --cache "$tmp" "../x"
[ -z "$(ls -A "$tmp")" ] || { echo "a failed pull left files: $(ls -R "$tmp")"; exit 1; }
echo "pull: ok"
