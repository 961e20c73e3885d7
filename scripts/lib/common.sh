# Shared by the developer scripts: repository root, apt installs, cargo target dir.
# shellcheck shell=bash

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_packages PKG...: installs the Debian packages that are missing; does
# nothing (and needs no network) when all are present.
ensure_packages() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    if printf '%s\n' "${missing[@]}" | grep -q ':arm64$' &&
        ! dpkg --print-foreign-architectures | grep -qx arm64; then
        as_root dpkg --add-architecture arm64
    fi
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# What building the service on this host needs: libjpeg-turbo is built from the
# turbojpeg crate's bundled source (Debian 12's 2.1 is too old), with nasm for SIMD.
# tzdata: the recording schedule follows the device's time zone.
HOST_PACKAGES=(build-essential cmake nasm pkg-config tzdata)

# What the tests use besides the build: ffprobe/ffmpeg check every recorded segment,
# chromium plays segments and exports the way a phone would, iproute2 gives the
# public-address tests a network namespace, python3-pip fetches the test pictures
# (scikit-image's sample images) from PyPI, mosquitto is the real MQTT broker the
# notification tests start on a free port, shellcheck checks the image's boot and init
# scripts (they run only on the device); libcamera-dev builds the libcamera shim
# (`--features libcamera`) and runs its no-camera path.
TEST_PACKAGES=(ffmpeg chromium iproute2 python3-pip mosquitto shellcheck libcamera-dev)

# Cross-building for the Pi (aarch64) with Debian's rustc and running its tests
# under user-mode qemu.
AARCH64_PACKAGES=(file rustc-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user-static)

require_cargo() {
    if ! command -v cargo >/dev/null; then
        echo "cargo not found: install Rust with rustup (https://rustup.rs) first" >&2
        exit 1
    fi
}
