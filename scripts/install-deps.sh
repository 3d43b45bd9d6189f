#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build, run and test
# SmartTracker: system packages via apt-get (sudo when not root) and
# cargo-nextest. Idempotent: installs only what is missing.
set -euo pipefail

# Build: C toolchain and headers for -sys crates (xcap needs clang,
# pipewire and wayland headers; x11rb and the X screensaver sensors need
# libxcb; the JPEG encoder links libjpeg-turbo's TurboJPEG API).
# Run/test: Xvfb with a window manager and X tools for the sensor tests,
# imagemagick for screenshots, iproute2 and nftables (packet loss; this
# kernel has no netem) for network-namespace LAN tests,
# mesa for the egui window under Xvfb, a session bus daemon for the
# live-view notice test, a monospace font for the capture benches'
# text-heavy screens, and util-linux's setpriv and perl to try the
# console's socket as another user.
packages=(
  build-essential pkg-config clang libclang-dev
  libxcb1-dev libxcb-randr0-dev libxcb-shm0-dev libxcb-screensaver0-dev
  libxrandr-dev libxkbcommon-dev libxkbcommon-x11-0 libdbus-1-dev
  libpipewire-0.3-dev libspa-0.2-dev libwayland-dev libegl-dev libgbm-dev
  libgl1-mesa-dri libturbojpeg0-dev
  xvfb xauth x11-utils x11-xserver-utils xdotool openbox imagemagick
  iproute2 iputils-ping procps nftables dbus-daemon fonts-dejavu-core
  util-linux perl-base
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]})); then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      echo "error: need root or sudo to install: ${missing[*]}" >&2
      exit 1
    }
    sudo=(sudo)
  fi
  echo "installing system packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || {
  echo "error: cargo not found; install the Rust toolchain (rustup) first, then rerun $0" >&2
  exit 1
}
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
