#!/usr/bin/env bash
# Vendor onnxruntime-web (MIT) into the web app's static folder, so the in-browser mode
# needs no CDN and no build step: `npm pack` fetches the published tarball of one pinned
# version, and only the wasm-only build is copied:
#
#   ort.wasm.min.js                 the JavaScript API (global `ort`), CPU/wasm backend only
#   ort-wasm-simd-threaded.mjs      the Emscripten loader it imports
#   ort-wasm-simd-threaded.wasm     the runtime itself (runs single-threaded without
#                                   cross-origin isolation, which is how the page uses it)
#
#   tools/vendor_ort.sh             # the pinned version below
#   ORT_WEB_VERSION=1.30.0 tools/vendor_ort.sh
#
# Needs npm and network access to the npm registry; nothing of it is used at run time.
# The npm tarball has no LICENSE file (package.json says "MIT"; every file carries the
# Microsoft MIT header), so the MIT text of onnxruntime's repository is written beside it.
set -euo pipefail
VERSION="${ORT_WEB_VERSION:-1.30.0}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/src/genrescope/serve/static/vendor/onnxruntime-web"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
TARBALL="$(npm pack --silent "onnxruntime-web@$VERSION" | tail -n 1)"
tar -xzf "$TARBALL"
grep -q '"license": "MIT"' package/package.json
rm -rf "$DEST"
mkdir -p "$DEST"
cp package/dist/ort.wasm.min.js package/dist/ort-wasm-simd-threaded.mjs package/dist/ort-wasm-simd-threaded.wasm "$DEST/"
cat > "$DEST/LICENSE" <<'LIC'
MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
LIC
{
    echo "onnxruntime-web $VERSION (https://github.com/microsoft/onnxruntime), MIT licence (see LICENSE)."
    echo "Vendored by tools/vendor_ort.sh from the npm tarball $TARBALL."
    echo "sha256 of the tarball: $(sha256sum "$TARBALL" | cut -d' ' -f1)"
    (cd "$DEST" && sha256sum ort.wasm.min.js ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm)
} > "$DEST/VERSION.txt"
echo "onnxruntime-web $VERSION -> $DEST"
ls -l "$DEST"
