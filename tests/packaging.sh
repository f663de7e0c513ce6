#!/usr/bin/env bash
# Builds the Debian package with cargo-deb and checks it:
#   1. the package's metadata and file list (dpkg-deb -I / -c), the binary's
#      size (< 12 MB) and `--version` (revision and build date baked in);
#   2. the systemd unit as shipped: `systemd-analyze verify` (no warnings)
#      and `systemd-analyze security --offline` (exposure printed, must stay
#      below 2.0);
#   3. install into a throwaway root (dpkg --root, maintainer scripts run
#      chroot-less with DPKG_ROOT), then remove and purge: the user is
#      created, the data directory survives removal and purge.
# Every tool must be there: .ci/run installs them. Nothing is skipped.
# Prints the figures the closing note quotes (binary and .deb size).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "packaging: FAIL: $*" >&2
    exit 1
}
for tool in cargo-deb dpkg dpkg-deb systemd-analyze; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (.ci/run installs it)"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== cargo deb"
# LABELHUB_DEB_NO_BUILD=1 packages the release binary already in target/
# (a developer who just built it); CI always builds.
no_build=()
if [ -n "${LABELHUB_DEB_NO_BUILD:-}" ]; then
    no_build=(--no-build)
fi
cargo deb --locked "${no_build[@]}" --output "$tmp/labelhub.deb"
deb="$tmp/labelhub.deb"
[ -s "$deb" ] || fail "cargo deb wrote no package"

echo "== dpkg-deb -I"
dpkg-deb -I "$deb" >"$tmp/info"
cat "$tmp/info"
grep -q '^ Package: labelhub$' "$tmp/info" || fail "package name"
grep -q '^ Depends: .*libc6' "$tmp/info" || fail "no libc6 dependency (\$auto)"
grep -q '^ Depends: .*passwd' "$tmp/info" || fail "no passwd dependency (useradd)"
for script in postinst prerm postrm conffiles; do
    grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\*? +$script( |\$)" "$tmp/info" ||
        fail "no $script in the control archive"
done
for script in postinst prerm postrm; do
    grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\* +$script " "$tmp/info" ||
        fail "$script is not executable"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/default/labelhub ||
    fail "/etc/default/labelhub is not a conffile"

echo "== dpkg-deb -c"
dpkg-deb -c "$deb" | tee "$tmp/files"
for path in ./usr/bin/labelhub ./lib/systemd/system/labelhub.service \
    ./lib/udev/rules.d/60-labelhub-brother.rules ./etc/default/labelhub \
    ./usr/share/doc/labelhub/README.md ./usr/share/doc/labelhub/copyright; do
    grep -q " $path\$" "$tmp/files" || fail "$path is not in the package"
done
grep -q 'rwxr-xr-x .* ./usr/bin/labelhub$' "$tmp/files" || fail "binary not 0755"

echo "== contents"
dpkg-deb -x "$deb" "$tmp/x"
bin_size=$(stat -c %s "$tmp/x/usr/bin/labelhub")
deb_size=$(stat -c %s "$deb")
[ "$bin_size" -lt $((12 * 1024 * 1024)) ] || fail "binary is $bin_size bytes, not under 12 MB"
if command -v file >/dev/null && file "$tmp/x/usr/bin/labelhub" | grep -q 'not stripped'; then
    fail "the packaged binary is not stripped"
fi
version=$("$tmp/x/usr/bin/labelhub" --version)
echo "$version"
case "$version" in
"labelhub $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1) (revision "*", built 20"*) ;;
*) fail "unexpected --version: $version" ;;
esac
# A binary built here names the checked-out commit (not checked for a
# reused binary, which may be older).
if [ -z "${LABELHUB_DEB_NO_BUILD:-}" ] && git rev-parse HEAD >/dev/null 2>&1; then
    rev=$(git rev-parse --short=12 HEAD)
    case "$version" in *"revision $rev"*) ;; *) fail "--version does not name HEAD $rev" ;; esac
fi

echo "== systemd-analyze verify (the unit as shipped)"
mkdir -p "$tmp/unit"
sed "s|/usr/bin/labelhub|$tmp/x/usr/bin/labelhub|" "$tmp/x/lib/systemd/system/labelhub.service" \
    >"$tmp/unit/labelhub.service"
systemd-analyze verify "$tmp/unit/labelhub.service" 2>"$tmp/verify" || {
    cat "$tmp/verify"
    fail "systemd-analyze verify"
}
if [ -s "$tmp/verify" ]; then
    cat "$tmp/verify"
    fail "systemd-analyze verify printed warnings"
fi
systemd-analyze security --offline=yes --no-pager "$tmp/unit/labelhub.service" >"$tmp/security" 2>&1 || true
exposure=$(sed -n 's/.*Overall exposure level for labelhub.service: \([0-9.]*\).*/\1/p' "$tmp/security")
[ -n "$exposure" ] || {
    cat "$tmp/security"
    fail "systemd-analyze security printed no exposure level"
}
awk -v e="$exposure" 'BEGIN { exit !(e < 2.0) }' || fail "exposure $exposure is not below 2.0"

echo "== udev rule"
rule="$tmp/x/lib/udev/rules.d/60-labelhub-brother.rules"
grep -q 'ATTRS{idVendor}=="04f9", GROUP="lp", MODE="0660"' "$rule" || fail "udev rule: lp group"
grep -q 'SYMLINK+="labelhub/brother-\$attr{serial}"' "$rule" || fail "udev rule: serial symlink"
if command -v udevadm >/dev/null && udevadm verify --help >/dev/null 2>&1; then
    udevadm verify "$rule" || fail "udevadm verify"
fi

echo "== install into a throwaway root"
root="$tmp/root"
mkdir -p "$root/etc" "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/log" \
    "$root/usr/sbin"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:*:19000:0:99999:7:::\n' >"$root/etc/shadow"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'root:*::\n' >"$root/etc/gshadow"
dpkg_root() {
    dpkg --root="$root" --force-script-chrootless --force-depends \
        --log="$tmp/dpkg.log" "$@"
}
dpkg_root -i "$deb"
dpkg --root="$root" -s labelhub | grep -q '^Status: install ok installed$' || fail "not installed"
grep -q '^labelhub:x:[0-9]*:[0-9]*:labelhub print hub:/var/lib/labelhub:/usr/sbin/nologin$' \
    "$root/etc/passwd" || fail "postinst did not create the labelhub user"
grep -q '^lp:' "$root/etc/group" || fail "postinst did not create the lp group"
[ -d "$root/var/lib/labelhub" ] || fail "no /var/lib/labelhub"
"$root/usr/bin/labelhub" --version >/dev/null || fail "installed binary does not run"
# Data the hub would have written.
"$root/usr/bin/labelhub" models >/dev/null
echo "jobs" >"$root/var/lib/labelhub/labelhub.db"
echo "PRINTER_HUB_LOG_LEVEL=debug" >>"$root/etc/default/labelhub"

echo "== remove keeps the data and the changed configuration"
dpkg_root -r labelhub
[ ! -e "$root/usr/bin/labelhub" ] || fail "binary left after remove"
[ ! -e "$root/lib/systemd/system/labelhub.service" ] || fail "unit left after remove"
[ -f "$root/var/lib/labelhub/labelhub.db" ] || fail "remove deleted the data"
[ -f "$root/etc/default/labelhub" ] || fail "remove deleted the conffile"

echo "== purge keeps the data"
dpkg_root -P labelhub
[ -f "$root/var/lib/labelhub/labelhub.db" ] || fail "purge deleted the data"
[ ! -e "$root/etc/default/labelhub" ] || fail "purge left the conffile"
grep -q '^labelhub:' "$root/etc/passwd" || fail "purge removed the user that owns the data"

echo "== reinstall over the kept data"
dpkg_root -i "$deb"
[ "$(cat "$root/var/lib/labelhub/labelhub.db")" = jobs ] || fail "reinstall touched the data"
[ "$(grep -c '^labelhub:' "$root/etc/passwd")" = 1 ] || fail "reinstall added the user twice"

echo "packaging: binary $bin_size bytes, package $deb_size bytes, unit exposure $exposure"
echo "packaging: 1 passed, 0 failed"
