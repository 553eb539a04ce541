#!/usr/bin/env bash
# Installs the Debian packages dsocr needs (as root, or through sudo) and builds it in ./build.
# Usage: scripts/setup.sh [extra cmake args]   e.g. -DDSOCR_WITH_MUPDF=OFF -DDSOCR_WITH_PDF=OFF -DDSOCR_WITH_CUDA=OFF
#        scripts/setup.sh --no-build           only the packages
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config xz-utils
  libdnnl-dev ocl-icd-opencl-dev                # oneDNN: CPU GEMM (its CMake config requires OpenCL)
  libpng-dev libjpeg-dev libwebp-dev libtiff-dev libexif-dev libstb-dev   # images
  libgif-dev                                    # GIF (giflib, MIT): first frame as palette indices
  libpoppler-cpp-dev                            # PDF rasterising (GPL, optional: -DDSOCR_WITH_PDF=OFF)
  libmupdf-dev libmujs-dev libgumbo-dev libopenjp2-7-dev libjbig2dec0-dev   # PDF rasterising as PyMuPDF (AGPL,
                                                # optional: -DDSOCR_WITH_MUPDF=OFF); static libmupdf.a needs the rest
  nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev
  libcpp-httplib-dev libcurl4-openssl-dev
  libfreetype-dev libharfbuzz-dev fonts-dejavu-core   # labels on annotated pages; dsocr render (shaping)
  libfribidi-dev                                # dsocr render: right-to-left text (Unicode bidi algorithm)
  libgtest-dev libbenchmark-dev
  libpugixml-dev poppler-utils qpdf   # tests: read back hOCR/ALTO (XML parser), check searchable PDFs
  curl nodejs chromium   # server tests: curl multipart, the openai npm client, the web page in headless Chromium
  wrk                    # bench/serve_load.sh: the server's load test
)
# Debian's npm, unless npm is there already (NodeSource's nodejs ships its own and conflicts with Debian's).
command -v npm >/dev/null || PACKAGES+=(npm)
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" = --no-build ]; then exit 0; fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j "$(nproc)"
echo "setup: built build/dsocr"
