#!/usr/bin/env bash
# The main job: serve BACKING over SMB and mount it at MOUNT, both on one lock manager
# with the embedded (sled) store under /var/lib/leasefs. Builds leasefs first.
#   scripts/serve.sh BACKING MOUNT [more `leasefs serve` flags, e.g. --user alice:secret]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 2 ]]; then
  echo "usage: $0 BACKING MOUNT [leasefs serve flags...]" >&2
  exit 2
fi
backing=$1 mount=$2
shift 2
if ! command -v fusermount3 >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq fuse3 >/dev/null
fi
cargo build --release --bin leasefs
mkdir -p "$mount"
exec target/release/leasefs serve --backing "$backing" --mount "$mount" \
  --state-dir "${LEASEFS_STATE_DIR:-/var/lib/leasefs}" "$@"
