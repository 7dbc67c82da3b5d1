#!/usr/bin/env bash
# Installs the Debian packages fsx needs to build, mount and run its tests:
#   libfuse2 (what fuse-native links), fuse3 (fusermount), fio and attr (tests), python3/make/g++ (node-gyp build of
#   the patched fuse-native binding), util-linux (setpriv in tests), openssh-server (the SFTP tests start their own
#   sshd on 127.0.0.1), sshfs and bindfs (foreign FUSE mounts that `fsx unmount` must refuse, in the CLI tests),
#   redis-server (the coherence tests start their own on 127.0.0.1).
# With --bench it also installs the other benchmark peers: rclone, s3fs.
set -euo pipefail
PKGS=(libfuse2 fuse3 fio attr util-linux python3 make g++ procps openssh-server openssh-client sshfs bindfs redis-server)
if [[ "${1:-}" == "--bench" ]]; then PKGS+=(rclone s3fs); fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "system packages: all present"
  exit 0
fi
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "fsx: these Debian packages are missing and you are not root: ${missing[*]} (install them: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
