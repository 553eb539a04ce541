#!/usr/bin/env bash
# The CUDA checks in one go, for a session that holds a GPU machine for a few minutes.
#
#   scripts/gpu-check.sh bundle [BUILD_DIR] [BUNDLE_DIR]
#       On the build machine: copies the CUDA test binaries of a lean build and the shared libraries
#       they need that a bare GPU image may lack (everything but glibc and the CUDA/driver libraries)
#       into BUNDLE_DIR (default gpu-bundle), small enough to travel with the working tree. Build first:
#         cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DDSOCR_WITH_DNNL=OFF \
#               -DDSOCR_WITH_PDF=OFF -DDSOCR_WITH_MUPDF=OFF -DDSOCR_WITH_CUDA=ON -DDSOCR_BENCH=ON
#         ninja -C build-gpu test_backend_ops test_cuda
#   scripts/gpu-check.sh run [BUNDLE_DIR]
#       On the GPU machine: nvidia-smi, test_cuda, the op conformance suite's cuda cases, the same
#       cases under compute-sanitizer's memcheck when the image has it, then a short table (the last
#       lines of the output). Everything is saved under $OUT/gpu-check when $OUT is set.
#       Exit status: 0 when every test ran and passed, 1 when one failed, 2 when any was skipped (no
#       usable device) or none could run.
# From a session with the device tool: bundle here, then one call
#   run(command="scripts/gpu-check.sh run gpu-bundle", carry=["gpu-bundle"], timeout_s=480)
set -uo pipefail
cd "$(dirname "$0")/.."

TESTS=(test_cuda test_backend_ops)

bundle() {
  local build=${1:-build-gpu} dest=${2:-gpu-bundle}
  for t in "${TESTS[@]}"; do
    [ -x "$build/tests/$t" ] || { echo "gpu-check: $build/tests/$t is missing (build it first)" >&2; exit 2; }
  done
  rm -rf "$dest" && mkdir -p "$dest/lib"
  for t in "${TESTS[@]}"; do
    cp "$build/tests/$t" "$dest/"
    strip --strip-debug "$dest/$t" 2>/dev/null || true
    # Libraries that resolve here, except the C library itself (must be the GPU image's) and CUDA's
    # (cuBLASLt alone is 500 MB: the GPU image's toolkit or driver provides them).
    ldd "$build/tests/$t" | awk '/=> \// {print $1, $3}' | while read -r name path; do
      case "$name" in
        libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libcuda.so*|libcudart.so*|libcublas*) ;;
        *) cp -L "$path" "$dest/lib/$name" ;;
      esac
    done
  done
  du -sh "$dest"
}

run() {
  local dir=${1:-gpu-bundle}
  local out=${OUT:-}/gpu-check
  [ -n "${OUT:-}" ] || out=$(mktemp -d)
  mkdir -p "$out"
  export LD_LIBRARY_PATH="$PWD/$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # CUDA's libraries where the image keeps them, if the loader does not know them already.
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
  done
  {
    echo "== nvidia-smi"
    nvidia-smi || echo "nvidia-smi failed"
    echo "== missing libraries"
    for t in "${TESTS[@]}"; do ldd "$dir/$t" | grep "not found" || true; done
  } 2>&1 | tee "$out/system.txt"
  local status=0
  echo "== test_cuda" | tee "$out/test_cuda.txt"
  timeout 300 "$dir/test_cuda" --gtest_output="xml:$out/test_cuda.xml" 2>&1 | tee -a "$out/test_cuda.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
  echo "== test_backend_ops (cuda cases)" | tee "$out/test_backend_ops.txt"
  timeout 300 "$dir/test_backend_ops" --gtest_filter='*/cuda' --gtest_output="xml:$out/test_backend_ops.xml" 2>&1 |
    tee -a "$out/test_backend_ops.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1

  # Out-of-bounds and uninitialised-memory errors that a passing comparison can hide.
  local memcheck="absent"
  local sanitizer
  sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
  if [ -n "$sanitizer" ]; then
    echo "== compute-sanitizer memcheck (cuda cases)" | tee "$out/memcheck.txt"
    timeout 240 "$sanitizer" --tool memcheck --error-exitcode 99 "$dir/test_backend_ops" --gtest_filter='*/cuda' \
      >>"$out/memcheck.txt" 2>&1
    case $? in 0) memcheck=clean ;; 99) memcheck=ERRORS; status=1 ;; 124) memcheck=timeout ;; *) memcheck=failed; status=1 ;; esac
    tail -5 "$out/memcheck.txt"
  fi

  # The table: one line per test, from gtest's own result lines.
  {
    echo
    echo "== gpu-check summary ($(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1))"
    printf '%-8s %8s  %s\n' result ms test
    cat "$out/test_cuda.txt" "$out/test_backend_ops.txt" | awk '
      /^\[       OK \]/ || /^\[  FAILED  \]/ || /^\[  SKIPPED \]/ {
        if ($0 !~ /\(([0-9]+) ms\)/) next
        r = ($2 == "OK") ? "ok" : ($2 == "FAILED" ? "FAILED" : "skipped")
        ms = $0; sub(/.*\(/, "", ms); sub(/ ms\).*/, "", ms)
        name = $0; sub(/^\[[^]]*\] /, "", name); sub(/ \(.*/, "", name)
        printf "%-8s %8s  %s\n", r, ms, name
        n[r]++
      }
      END { printf "passed %d, failed %d, skipped %d\n", n["ok"], n["FAILED"], n["skipped"] }'
    echo "memcheck: $memcheck"
  } | tee "$out/summary.txt"
  # A skip on a GPU machine means the device was not usable: nothing was verified.
  if ! grep -q '^ok ' "$out/summary.txt" || grep -q '^skipped ' "$out/summary.txt"; then [ $status = 1 ] || status=2; fi
  exit $status
}

case "${1:-}" in
  bundle) shift; bundle "$@" ;;
  run) shift; run "$@" ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac
