#!/bin/bash
# Build Vireo's tiny Linux test kernel and its busybox initramfs.
#
#   tests/guests/linux/build.sh              build if needed, print the directory
#   tests/guests/linux/build.sh --print-dir  print the directory without building;
#                                            exit 1 if it has not been built yet
#
# Output (cached outside the source tree, never rebuilt once complete):
#   ${VIREO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vireo}/linux-<hash>/
#     bzImage            the kernel, Linux boot protocol (LZ4-compressed)
#     vmlinux            the uncompressed ELF with the PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)
#     initramfs.cpio.gz  busybox-static + /init (gzip level 0: stored, fast to unpack)
#     config             the final .config
#     System.map         for reading addresses out of a hung guest
#     build.log          the full build log
# <hash> is the SHA-256 (first 16 hex digits) of this script, vireo.config,
# 0001-skip-int3-selftest.patch, the linux-source-6.1 package version and the
# busybox-static package version: change any of them and a new directory is built.
#
# The build extracts /usr/src/linux-source-6.1.tar.xz into a temporary directory
# next to the cache entry, runs `make tinyconfig`, merges vireo.config, runs
# `make olddefconfig`, checks that every option of the fragment took effect, applies
# the patch, builds with `make -j$(nproc)` and renames the result into place, so the
# directory is either complete or absent. Concurrent runs serialise on a lock file.
# All output goes to the build log; on failure its tail is printed on stderr.
# The last line on stdout is always the output directory.

set -euo pipefail

# The whole script is one brace group: bash parses it completely before running it,
# so editing build.sh while a build runs cannot break that build.
{

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_tar=${VIREO_LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
busybox_bin=${VIREO_BUSYBOX:-/bin/busybox}
fragment=$here/vireo.config
patches=("$here"/0001-skip-int3-selftest.patch)

die() { echo "build.sh: $*" >&2; exit 1; }

mode=build
case "${1:-}" in
  "") ;;
  --print-dir) mode=print ;;
  -h|--help) sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown; }

cache_root=${VIREO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vireo}
hash=$( {
    cat "${BASH_SOURCE[0]}" "$fragment" "${patches[@]}"
    echo "linux-source-6.1 $(pkg_version linux-source-6.1)"
    echo "busybox-static $(pkg_version busybox-static)"
  } | sha256sum | cut -c1-16)
out=$cache_root/linux-$hash
wanted=(bzImage vmlinux initramfs.cpio.gz config)

is_complete() {
  local f
  for f in "${wanted[@]}"; do [[ -s $out/$f ]] || return 1; done
}

if [[ $mode == print ]]; then
  if ! is_complete; then
    echo "build.sh: $out is not built; run tests/guests/linux/build.sh" >&2
    echo "$out"
    exit 1
  fi
  echo "$out"
  exit 0
fi

if is_complete; then
  echo "$out"
  exit 0
fi

[[ -r $src_tar ]] || die "$src_tar not found (apt install linux-source-6.1)"
[[ -x $busybox_bin ]] || die "$busybox_bin not found (apt install busybox-static)"
if command -v file >/dev/null; then
  file -L "$busybox_bin" | grep -q 'statically linked' ||
    die "$busybox_bin is not statically linked (apt install busybox-static)"
fi
for tool in make gcc flex bison bc perl xz lz4 python3 sha256sum flock; do
  command -v "$tool" >/dev/null || die "'$tool' is required"
done

mkdir -p "$cache_root"
exec 9>"$cache_root/.linux-$hash.lock"
flock 9
if is_complete; then   # somebody else built it while we waited
  echo "$out"
  exit 0
fi

tmp=$(mktemp -d "$cache_root/.linux-$hash.tmp.XXXXXX")
log=$tmp/build.log
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
fail() {
  local keep=$cache_root/linux-$hash.failed.log
  cp "$log" "$keep" 2>/dev/null || true
  echo "build.sh: $*" >&2
  echo "---- last lines of the build log (full log: $keep) ----" >&2
  tail -n 40 "$log" >&2 || true
  exit 1
}
step() { echo "==== $* ($(date -u +%T))" >>"$log"; }

start=$(date +%s)
echo "build.sh: building the Vireo test kernel in $tmp (a few minutes; log: $log)" >&2

step "extract $src_tar"
tar -C "$tmp" -xJf "$src_tar" >>"$log" 2>&1 || fail "cannot extract $src_tar"
ksrc=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'linux-source-*' | head -n1)
[[ -n $ksrc ]] || fail "no linux-source-* directory in $src_tar"

for p in "${patches[@]}"; do
  step "patch $(basename "$p")"
  patch -d "$ksrc" -p1 --forward <"$p" >>"$log" 2>&1 || fail "patch $(basename "$p") does not apply"
done

kmake() { make -C "$ksrc" ARCH=x86_64 "$@" >>"$log" 2>&1; }

step "configure"
kmake tinyconfig || fail "make tinyconfig failed"
"$ksrc"/scripts/kconfig/merge_config.sh -m -O "$ksrc" "$ksrc/.config" "$fragment" >>"$log" 2>&1 ||
  fail "merge_config.sh failed"
kmake olddefconfig || fail "make olddefconfig failed"

step "verify the configuration"
missing=()
while IFS= read -r line; do
  line=${line%%[[:space:]]}
  if [[ $line =~ ^CONFIG_[A-Za-z0-9_]+= ]]; then
    grep -qxF -- "$line" "$ksrc/.config" || missing+=("$line")
  elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
    sym=${BASH_REMATCH[1]}
    if grep -q "^$sym=" "$ksrc/.config"; then missing+=("$line"); fi
  fi
done <"$fragment"
if ((${#missing[@]})); then
  echo "these options of vireo.config did not take effect (a dependency is missing):" >>"$log"
  for m in "${missing[@]}"; do
    sym=$(sed -E 's/^# (CONFIG_[A-Za-z0-9_]+) is not set$/\1/; s/=.*//' <<<"$m")
    got=$(grep -E "^($sym=|# $sym is not set)" "$ksrc/.config" || true)
    echo "  wanted: $m    got: ${got:-absent}" >>"$log"
  done
  fail "configuration check failed: ${missing[*]}"
fi

step "make -j$(nproc) bzImage"
kmake -j"$(nproc)" bzImage || fail "kernel build failed"
grep -q 'CONFIG_PVH=y' "$ksrc/.config" || fail "CONFIG_PVH is not set"
grep -q ' pvh_start_xen$' "$ksrc/System.map" || fail "vmlinux has no PVH entry point (pvh_start_xen)"
if command -v readelf >/dev/null; then
  readelf -n "$ksrc/vmlinux" 2>/dev/null | grep -q '^ *Xen ' ||
    fail "vmlinux has no Xen ELF notes (the PVH entry is XEN_ELFNOTE_PHYS32_ENTRY)"
fi

step "initramfs"
root=$tmp/initramfs
mkdir -p "$root"
cat >"$tmp/init" <<'EOF'
#!/bin/busybox sh
# Vireo test initramfs. On hosts whose KVM backend emulates instructions, user space
# dies at its first system call; the kernel tests stop at "Run /init as init process".
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "vireo-init: user space is running"
/bin/busybox uname -a
/bin/busybox cat /proc/cmdline
echo "vireo-init: powering off"
/bin/busybox poweroff -f
EOF
gcc -O2 -o "$tmp/gen_init_cpio" "$ksrc/usr/gen_init_cpio.c" >>"$log" 2>&1 ||
  fail "cannot build gen_init_cpio"
cat >"$tmp/initramfs.list" <<EOF
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/null 0666 0 0 c 1 3
dir /bin 0755 0 0
dir /sbin 0755 0 0
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /tmp 1777 0 0
dir /root 0700 0 0
file /bin/busybox $busybox_bin 0755 0 0
slink /bin/sh busybox 0777 0 0
file /init $tmp/init 0755 0 0
EOF
# gzip level 0 (stored blocks): a valid .gz that the kernel unpacks at memcpy speed.
# With `gzip -9`, inflating 2 MB of busybox took the emulated guest ~200 s, and every
# boot waits for it before "Run /init". The gzip CLI has no level 0; Python's has.
"$tmp/gen_init_cpio" "$tmp/initramfs.list" 2>>"$log" >"$tmp/initramfs.cpio" ||
  fail "cannot build the initramfs"
python3 -c '
import gzip, shutil, sys
with open(sys.argv[1], "rb") as i, gzip.GzipFile(sys.argv[2], "wb", compresslevel=0, mtime=0) as o:
    shutil.copyfileobj(i, o)
' "$tmp/initramfs.cpio" "$tmp/initramfs.cpio.gz" >>"$log" 2>&1 || fail "cannot compress the initramfs"

step "install"
stage=$tmp/out
mkdir -p "$stage"
cp "$ksrc/arch/x86/boot/bzImage" "$stage/bzImage"
cp "$ksrc/vmlinux" "$stage/vmlinux"
cp "$ksrc/.config" "$stage/config"
cp "$ksrc/System.map" "$stage/System.map"
mv "$tmp/initramfs.cpio.gz" "$stage/initramfs.cpio.gz"
step "done in $(( $(date +%s) - start )) s"
cp "$log" "$stage/build.log"
rm -rf "$out"          # only ever an incomplete leftover here (is_complete was false)
mv -T "$stage" "$out" || fail "cannot rename $stage to $out"
rm -f "$cache_root/linux-$hash.failed.log"
echo "build.sh: built in $(( $(date +%s) - start )) s" >&2
echo "$out"
exit 0
}
