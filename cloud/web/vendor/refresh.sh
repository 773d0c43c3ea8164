#!/usr/bin/env bash
# Refresh the dashboard's vendored browser libraries from the npm registry, exactly as package-lock.json pins them:
#   bash cloud/web/vendor/refresh.sh
# To move to a newer release, change its version in package.json, run `npm install --package-lock-only` here, then
# this script. The pages load these files from /static/vendor: nothing comes from a CDN and nothing is built.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
static="$here/../static/vendor"
tests="$here/../../../tests/web/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --silent)
m="$work/node_modules"
rm -rf "$static" "$tests"
mkdir -p "$static/htmx" "$static/uplot" "$static/swagger-ui" "$tests"
cp "$m/htmx.org/dist/htmx.min.js" "$m/htmx.org/LICENSE" "$static/htmx/"
cp "$m/uplot/dist/uPlot.iife.min.js" "$m/uplot/dist/uPlot.min.css" "$m/uplot/LICENSE" "$static/uplot/"
cp "$m/swagger-ui-dist/swagger-ui-bundle.js" "$m/swagger-ui-dist/swagger-ui.css" "$m/swagger-ui-dist/favicon-32x32.png" \
  "$m/swagger-ui-dist/LICENSE" "$m/swagger-ui-dist/NOTICE" "$static/swagger-ui/"
# axe-core checks the pages' accessibility in the browser tests only; it is never served
cp "$m/axe-core/axe.min.js" "$m/axe-core/LICENSE" "$tests/"
(cd "$m" && for package in htmx.org uplot swagger-ui-dist axe-core; do
  node -e "const p=require('./$package/package.json'); console.log(p.name + ' ' + p.version + ' ' + p.license)"
done) > "$static/VERSIONS"
echo "vendored: $(tr '\n' ';' < "$static/VERSIONS")"
