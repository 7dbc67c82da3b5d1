#!/usr/bin/env bash
# One command from a fresh clone to a working mount: installs what fsx needs, builds it, and mounts the embedded
# default source (./data, a local directory) on ./mnt with the balanced preset, in the background.
# Unmount with: node bin/run.js unmount ./mnt
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
npm ci --no-audit --no-fund
npm run build
mkdir -p data mnt
[[ -e data/README.txt ]] || printf 'This directory is served by fsx at ./mnt.\n' > data/README.txt
node bin/run.js mount ./data ./mnt --preset balanced --daemon
ls -l mnt
echo "Try: cp some-file mnt/ && ls -l data/    Unmount: node bin/run.js unmount ./mnt"
