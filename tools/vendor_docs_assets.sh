#!/usr/bin/env bash
# Vendor the docs site's browser assets from the npm registry into docs/assets/vendor/.
#
# The site must work offline (file:// and a local server, no CDN), so KaTeX and the
# iframe-worker shim that Material's offline plugin needs are served from the site itself.
# The output is committed (~630 KB with the MIT LICENSE files), so CI needs no npm; run this
# by hand when bumping a version, then commit docs/assets/vendor/.
#
# Usage: tools/vendor_docs_assets.sh
set -euo pipefail

KATEX_VERSION=0.19.1
IFRAME_WORKER_VERSION=1.0.4

cd "$(dirname "$0")/.."
DEST=docs/assets/vendor
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# npm pack only downloads the published tarballs: no npm install, no node_modules/.
(cd "$WORK" && npm pack --silent "katex@${KATEX_VERSION}" "iframe-worker@${IFRAME_WORKER_VERSION}" >/dev/null)
mkdir -p "$WORK/katex" "$WORK/iframe-worker"
tar -xzf "$WORK/katex-${KATEX_VERSION}.tgz" -C "$WORK/katex" --strip-components=1
tar -xzf "$WORK/iframe-worker-${IFRAME_WORKER_VERSION}.tgz" -C "$WORK/iframe-worker" --strip-components=1

# Start from scratch so that files of an older version never survive a bump.
rm -rf "$DEST/katex" "$DEST/iframe-worker"
mkdir -p "$DEST/katex/contrib" "$DEST/katex/fonts" "$DEST/iframe-worker"

# KaTeX: the minified library, auto-render, and only the woff2 fonts (every current browser
# takes woff2 first from the CSS src list, so woff/ttf are never requested).
cp "$WORK/katex/dist/katex.min.js" "$WORK/katex/dist/katex.min.css" "$WORK/katex/LICENSE" "$DEST/katex/"
cp "$WORK/katex/dist/contrib/auto-render.min.js" "$DEST/katex/contrib/"
cp "$WORK/katex/dist/fonts/"*.woff2 "$DEST/katex/fonts/"

# iframe-worker: the shim that lets Material's search run from file:// (listed under
# extra.polyfills in mkdocs.yml, which stops the offline plugin from adding unpkg.com).
cp "$WORK/iframe-worker/shim/index.js" "$DEST/iframe-worker/shim.js"
cp "$WORK/iframe-worker/LICENSE" "$DEST/iframe-worker/"

echo "vendored katex ${KATEX_VERSION} ($(ls "$DEST/katex/fonts" | wc -l) woff2 fonts)" \
     "and iframe-worker ${IFRAME_WORKER_VERSION}: $(du -sh "$DEST" | cut -f1) in $DEST"
