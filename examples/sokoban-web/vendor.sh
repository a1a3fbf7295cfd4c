#!/bin/sh
# Copy onnxruntime-web (MIT, Microsoft) from npm into vendor/, once; the page then works offline.
# npm checks the package against the registry's sha512 integrity record.
set -eu
cd "$(dirname "$0")"
VERSION=1.30.0
work=$(mktemp -d)
(cd "$work" && npm pack --silent "onnxruntime-web@$VERSION" >/dev/null && tar xzf onnxruntime-web-$VERSION.tgz)
mkdir -p vendor
for f in ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm; do
    cp "$work/package/dist/$f" vendor/
done
cp LICENSE-onnxruntime-web vendor/LICENSE
echo "onnxruntime-web $VERSION" > vendor/VERSION
rm -rf "$work"
echo "vendor/: onnxruntime-web $VERSION ($(du -sh vendor | cut -f1))"
