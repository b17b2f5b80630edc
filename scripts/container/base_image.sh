#!/usr/bin/env bash
# Build a Debian bookworm minbase root file system with debootstrap and import it into podman
# as the local base image, for machines that can reach a Debian mirror but no image registry.
#
#   scripts/container/base_image.sh [IMAGE]     (default IMAGE: localhost/selfcritic-base:bookworm)
#
# The root file system is cached as a tarball under $SELFCRITIC_CONTAINER_CACHE
# (default /var/cache/selfcritic-container); every step is skipped when its result exists.
# The machine's extra CA certificates (/usr/local/share/ca-certificates/*.crt) are copied in,
# so that pip and apt inside the build trust the same TLS interceptors as the host.
set -euo pipefail

image="${1:-localhost/selfcritic-base:bookworm}"
cache="${SELFCRITIC_CONTAINER_CACHE:-/var/cache/selfcritic-container}"
tarball="$cache/bookworm-minbase.tar"
suite=bookworm

say() { printf '[base-image] %s\n' "$*" >&2; }

# The Debian mirror this machine's apt is configured with (deb822 or one-line format).
debian_mirror() {
  local uri
  uri=$(grep -hs -E '^\s*URIs:\s*\S+/debian/?\s*$' /etc/apt/sources.list.d/*.sources \
          | head -n1 | awk '{print $2}')
  if [[ -z "$uri" ]]; then
    uri=$(grep -hs -E '^\s*deb\s+(\[[^]]*\]\s+)?\S+/debian/?\s+bookworm\s' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
          | head -n1 | sed -E 's/^\s*deb\s+(\[[^]]*\]\s+)?//' | awk '{print $1}')
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

if podman image exists "$image"; then
  say "$image already imported"
  exit 0
fi

if [[ ! -s "$tarball" ]]; then
  command -v debootstrap >/dev/null || { say "debootstrap is missing: apt-get install debootstrap"; exit 1; }
  mirror=$(debian_mirror)
  security="${mirror%/debian}/debian-security"
  mkdir -p "$cache"
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  say "debootstrap --variant=minbase $suite from $mirror (a few minutes, once)"
  debootstrap --variant=minbase --include=ca-certificates "$suite" "$rootfs" "$mirror" \
    > "$cache/debootstrap.log" 2>&1 || { tail -n 30 "$cache/debootstrap.log" >&2; exit 1; }

  cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
SOURCES
  shopt -s nullglob
  extra_cas=(/usr/local/share/ca-certificates/*.crt)
  if (( ${#extra_cas[@]} )); then
    say "adding ${#extra_cas[@]} extra CA certificate(s) from /usr/local/share/ca-certificates"
    cp "${extra_cas[@]}" "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
  fi
  # What debian:bookworm-slim also drops: package lists, caches, logs.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
         "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log "$rootfs"/debootstrap
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  say "cached $tarball ($(du -h "$tarball" | cut -f1))"
fi

say "podman import $tarball as $image"
podman import --quiet --change 'CMD ["/bin/bash"]' "$tarball" "$image" >/dev/null
say "imported $image"
