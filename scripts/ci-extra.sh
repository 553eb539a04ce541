#!/usr/bin/env bash
# CI after the README's two commands (run by .ci/run inside a new Debian 12 root, after scripts/setup.sh):
#   asan   AddressSanitizer + UndefinedBehaviorSanitizer over the code that reads what users give (the
#          fuzz corpora: images, configs, checkpoints, tokenizers, model output) and the code that runs
#          threads over shared buffers (engine, server, kernels), built lean (no oneDNN, no PDF, no CUDA)
#          and with -DDSOCR_NATIVE=ON, the two build configurations the plain build does not cover.
# The default (`asan`) is what fits CI's ~40 minutes on 2 cores. Run before a change lands, by hand:
#   slurm  a real Slurm on localhost (slurm-wlm, munge): an array of shards, one cancelled and resubmitted.
#          Debian 12's slurmd (22.05) will not start without a mounted cgroup file system, and the new
#          Debian root CI builds in has none, so it runs on a machine that has one;
#   tsan   ThreadSanitizer over the tests labelled `concurrency` (the engine's threads);
#   arm64  cross-built (crossbuild-essential-arm64, arm64 multiarch libraries); the op conformance and
#          the decoder's golden tests under qemu-user (correctness of the NEON kernels, not speed);
#   lean   the lean configuration at full speed, whole suite.
# Sanitizer builds run many times slower: they set DSOCR_TEST_LIGHT, which trims the engine's
# batch-invariance matrix and the interrupt trials (the full versions run in the plain build).
# Each stage prints its wall time. Usage: scripts/ci-extra.sh [asan|slurm|tsan|arm64|lean ...]
set -euo pipefail
cd "$(dirname "$0")/.."
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(asan)
jobs=$(nproc)

stage() {
  local name=$1; shift
  local t0=$SECONDS
  echo "ci: --- $name ---"
  "$@"
  echo "ci: $name passed in $((SECONDS - t0)) s"
}

lean() {
  cmake -S . -B build-lean -G Ninja -DCMAKE_BUILD_TYPE=Release -DDSOCR_WITH_DNNL=OFF -DDSOCR_WITH_PDF=OFF \
    -DDSOCR_WITH_MUPDF=OFF -DDSOCR_WITH_CUDA=OFF -DDSOCR_BENCH=OFF
  cmake --build build-lean -j "$jobs"
  # The other kernel variants' golden reruns and the 100 interrupt trials ran in the plain build already.
  ctest --test-dir build-lean --output-on-failure -j "$jobs" -LE concurrency \
    -E '^isa_.*(Golden|Intermediates)|HundredInterrupts'
}

sanitizer_build() {  # dir, flags, [cmake -D options...], [--targets T... --], ctest args...
  local dir=$1 flags=$2; shift 2
  local defs=() targets=()
  while [ $# -gt 0 ] && [[ $1 == -D* ]]; do defs+=("$1"); shift; done
  if [ "${1:-}" = --targets ]; then
    shift
    while [ $# -gt 0 ] && [ "$1" != -- ]; do targets+=(--target "$1"); shift; done
    shift
  fi
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSOCR_WITH_CUDA=OFF -DDSOCR_BENCH=OFF "${defs[@]}" \
    -DCMAKE_CXX_FLAGS="$flags -fno-omit-frame-pointer" -DCMAKE_C_FLAGS="$flags -fno-omit-frame-pointer" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags"
  cmake --build "$dir" -j "$jobs" "${targets[@]}"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" "$@"
}

# The parts of the code that read what users give (the fuzz targets' corpora: images, configs,
# checkpoints, tokenizers, model output) and the parts that run threads over shared buffers (the
# engine, the server, the kernels' row partitions).
asan_targets=(fuzz_config_replay fuzz_grounding_replay fuzz_image_replay fuzz_safetensors_replay fuzz_tokenizer_replay
              test_safetensors test_config_validate test_checkpoint test_tokenizer test_image test_grounding
              test_backend_ops test_scheduler test_thread_pool test_engine test_server)

asan() {
  # -O1 -g1 and a subset of UBSan's checks (not vptr, alignment, object-size, ...): the whole set at
  # -O2 -g compiles 5x slower than the plain build, this 1.7x, which is what keeps CI near 40 minutes.
  # -DDSOCR_NATIVE=ON: one kernel variant (the plain build runs the others), the one build option no
  # other stage covers. detect_leaks=0: libgomp keeps its thread pools to exit by design.
  local ub=null,bounds,shift,signed-integer-overflow,integer-divide-by-zero,nonnull-attribute,returns-nonnull-attribute
  ub+=,unreachable,return,float-cast-overflow
  DSOCR_TEST_LIGHT=1 ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    sanitizer_build build-asan "-fsanitize=address,$ub -fno-sanitize-recover=all" \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DDSOCR_WITH_DNNL=OFF -DDSOCR_WITH_PDF=OFF -DDSOCR_WITH_MUPDF=OFF -DDSOCR_NATIVE=ON --targets "${asan_targets[@]}" -- \
    -E '_NOT_BUILT|^cli[.]'
}

tsan() {
  # The built-in GEMM: oneDNN's OpenMP runtime is not instrumented and would only report false races.
  # -DDSOCR_NATIVE=ON: the one build option no other stage covers (one kernel variant, -march=native).
  DSOCR_TEST_LIGHT=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    sanitizer_build build-tsan "-fsanitize=thread" -DDSOCR_WITH_DNNL=OFF -DDSOCR_NATIVE=ON -L concurrency --no-tests=error
}

slurm() {
  if ! command -v slurmctld >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
  fi
  bash tests/cli/slurm.sh build/dsocr build/testdata/tiny-model tests/data  # 77 (skipped) fails here
}

arm64() {
  local libs=(libpng-dev libjpeg-dev libwebp-dev libtiff-dev libexif-dev libgif-dev libcurl4-openssl-dev libpcre2-dev
              libfmt-dev libfreetype-dev libharfbuzz-dev libfribidi-dev libcpp-httplib-dev libgtest-dev)
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then dpkg --add-architecture arm64; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends crossbuild-essential-arm64 qemu-user \
    "${libs[@]/%/:arm64}" >/dev/null
  cmake -S . -B build-arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release \
    -DDSOCR_WITH_DNNL=OFF -DDSOCR_WITH_PDF=OFF -DDSOCR_WITH_MUPDF=OFF -DDSOCR_WITH_CUDA=OFF -DDSOCR_BENCH=OFF
  cmake --build build-arm64 -j "$jobs" --target test_backend_ops test_decoder
  # Every op of the NEON kernels, then the decoder's golden logits and greedy tokens (~3 min under
  # qemu). The encoder's golden run takes over 10 minutes under emulation and is left out; its
  # kernels (ViT attention, conv, norms, GELU) are in the op conformance test.
  qemu-aarch64 build-arm64/tests/test_backend_ops
  qemu-aarch64 build-arm64/tests/test_decoder --gtest_filter='DecoderGolden.*'
}

for s in "${stages[@]}"; do stage "$s" "$s"; done
