#!/usr/bin/env bash
# Vendor uPlot (MIT) into the web app's static folder, so the page needs no CDN and no
# build step: `npm pack` fetches the published tarball of one pinned version, and only
# the minified IIFE build, its stylesheet and the licence are copied.
#
#   tools/vendor_uplot.sh            # the pinned version below
#   UPLOT_VERSION=1.6.32 tools/vendor_uplot.sh
#
# Needs npm and network access to the npm registry; nothing of it is used at run time.
set -euo pipefail
VERSION="${UPLOT_VERSION:-1.6.32}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/src/genrescope/serve/static/vendor/uplot"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
TARBALL="$(npm pack --silent "uplot@$VERSION" | tail -n 1)"
tar -xzf "$TARBALL"
mkdir -p "$DEST"
cp package/dist/uPlot.iife.min.js package/dist/uPlot.min.css package/LICENSE "$DEST/"
{
    echo "uPlot $VERSION (https://github.com/leeoniya/uPlot), MIT licence (see LICENSE)."
    echo "Vendored by tools/vendor_uplot.sh from the npm tarball $TARBALL."
    echo "sha256 of the tarball: $(sha256sum "$TARBALL" | cut -d' ' -f1)"
} > "$DEST/VERSION.txt"
echo "uPlot $VERSION -> $DEST"
ls -l "$DEST"
