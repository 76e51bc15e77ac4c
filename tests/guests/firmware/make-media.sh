#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Builds the boot media of the firmware tests (tests/guests/test-firmware.c); run by meson
# at build time, one medium per call:
#
#   make-media.sh mbr     OUTPUT BOOTSECT.S   raw 4 MiB disk: MBR boot sector, one partition
#                                             entry, 0x55AA, the magic string at LBA 1
#   make-media.sh cd      OUTPUT BOOTSECT.S   ISO 9660 with an El Torito no-emulation boot
#                                             image (bootsect.S with CDBOOT) and a boot info
#                                             table, so the image knows its own LBA
#   make-media.sh grub    OUTPUT              GRUB (i386-pc only) rescue ISO whose menu is on
#                                             the serial console and the screen
#   make-media.sh notboot OUTPUT              ISO 9660 without a boot record
#   make-media.sh empty   OUTPUT              raw 4 MiB disk of zeros
#
# Tools: GNU as and ld (binutils), xorriso; grub-mkrescue and the i386-pc modules for grub
# (Debian: grub-common, grub-pc-bin). AS, LD, XORRISO, GRUB_MKRESCUE and GRUB_DIR override
# the programs and the module directory.

set -euo pipefail

AS=${AS:-as}
LD=${LD:-ld}
XORRISO=${XORRISO:-xorriso}
GRUB_MKRESCUE=${GRUB_MKRESCUE:-grub-mkrescue}
GRUB_DIR=${GRUB_DIR:-/usr/lib/grub/i386-pc}

DISK_SIZE=$((4 << 20))
SECTOR=512

die () {
  printf 'make-media.sh: %s\n' "$*" >&2
  exit 1
}

usage () {
  die "usage: make-media.sh mbr|cd|grub|notboot|empty OUTPUT [BOOTSECT.S]"
}

[[ $# -ge 2 ]] || usage
kind=$1
output=$2
source=${3:-}

work=$(mktemp -d "${TMPDIR:-/tmp}/vireo-media-XXXXXX")
trap 'rm -rf "$work"' EXIT

# Assembles bootsect.S flat at 0x7c00 into $work/$1.bin; further arguments go to as.
assemble () {
  local name=$1
  shift
  [[ -n $source && -f $source ]] || die "$kind: needs the path of bootsect.S"
  "$AS" --32 "$@" -o "$work/$name.o" "$source"
  "$LD" -m elf_i386 -Ttext 0x7c00 -e _start --oformat binary -o "$work/$name.bin" "$work/$name.o"
}

# put_bytes FILE OFFSET HEX…: writes the bytes given as hex pairs into FILE at OFFSET.
put_bytes () {
  local file=$1 offset=$2 hex="" b
  shift 2
  for b in "$@"; do
    hex+="\\x$b"
  done
  printf '%b' "$hex" | dd of="$file" bs=1 seek="$offset" conv=notrunc status=none
}

# put_le32 FILE OFFSET VALUE: writes VALUE as 32 bits, little-endian, into FILE at OFFSET.
put_le32 () {
  local v=$3
  put_bytes "$1" "$2" "$(printf '%02x' $((v & 0xff)))" "$(printf '%02x' $(((v >> 8) & 0xff)))" \
    "$(printf '%02x' $(((v >> 16) & 0xff)))" "$(printf '%02x' $(((v >> 24) & 0xff)))"
}

# xorriso -as mkisofs, quiet unless it fails.
xorriso_mkisofs () {
  command -v "$XORRISO" >/dev/null || die "$kind: $XORRISO not found (Debian: xorriso)"
  "$XORRISO" -as mkisofs -quiet "$@" >"$work/log" 2>&1 ||
    { cat "$work/log" >&2; die "$kind: xorriso failed"; }
}

case $kind in
  mbr)
    assemble mbr
    [[ $(stat -c %s "$work/mbr.bin") -eq 1024 ]] ||
      die "mbr: boot sector + LBA 1 must be 1024 bytes"
    truncate -s "$DISK_SIZE" "$work/disk.img"
    dd if="$work/mbr.bin" of="$work/disk.img" conv=notrunc status=none
    # One partition entry (bootable, type 0x83) from 1 MiB to the end: LBA start 2048.
    # CHS fields are 0xfe 0xff 0xff ("use LBA"), as partitioning tools write for big disks.
    start=2048
    count=$((DISK_SIZE / SECTOR - start))
    put_bytes "$work/disk.img" 446 80 fe ff ff 83 fe ff ff
    put_le32 "$work/disk.img" 454 "$start"
    put_le32 "$work/disk.img" 458 "$count"
    [[ $(od -An -tx1 -j510 -N2 "$work/disk.img" | tr -d ' ') == 55aa ]] || die "mbr: no 0x55AA"
    mv "$work/disk.img" "$output"
    ;;

  cd)
    assemble cd --defsym CDBOOT=1
    [[ $(stat -c %s "$work/cd.bin") -eq 4096 ]] || die "cd: the boot image must be 4096 bytes"
    mkdir "$work/iso"
    cp "$work/cd.bin" "$work/iso/boot.bin"
    printf 'Vireo firmware test CD\n' > "$work/iso/README.TXT"
    # -boot-load-size 4: the BIOS loads the first 2048 bytes only; the second 2048-byte
    # sector (the magic) must come through int 13h. -boot-info-table patches the copy in
    # the ISO with the image's own LBA.
    xorriso_mkisofs -R -J -V VIREO_CD -b boot.bin -no-emul-boot -boot-load-size 4 \
      -boot-info-table -o "$work/out.iso" "$work/iso"
    mv "$work/out.iso" "$output"
    ;;

  grub)
    command -v "$GRUB_MKRESCUE" >/dev/null ||
      die "grub: $GRUB_MKRESCUE not found (Debian: grub-common)"
    [[ -f $GRUB_DIR/modinfo.sh ]] ||
      die "grub: no GRUB i386-pc modules in $GRUB_DIR (Debian: grub-pc-bin)"
    mkdir -p "$work/iso/boot/grub"
    cat > "$work/iso/boot/grub/grub.cfg" <<'EOF'
# The firmware tests wait for this menu's entry on the serial console, then look at the
# screen. The screen is a graphical terminal (a VBE mode set through the VGA BIOS, then
# GRUB draws into the framebuffer itself): the text console draws every character through
# int 10h, which takes minutes for a whole menu where instructions are emulated.
serial --unit=0 --speed=115200
terminal_input serial console
if loadfont ascii; then
  set gfxmode=640x480
  insmod vbe
  insmod gfxterm
  terminal_output serial gfxterm
else
  terminal_output serial console
fi
set timeout=30
menuentry "Vireo firmware test" {
  echo "Vireo firmware test: entry started"
  # The debug-exit port: the host sees (0x12 << 1) | 1 = 37.
  outb 0xf4 0x12
}
EOF
    # -d: BIOS (i386-pc) only, no EFI image (which would also need mtools). The smallest
    # font (ASCII, 5 KB), no locales, no themes.
    "$GRUB_MKRESCUE" -d "$GRUB_DIR" --fonts=ascii --locales= --themes= \
      -o "$work/out.iso" "$work/iso" >"$work/log" 2>&1 ||
      { cat "$work/log" >&2; die "grub: grub-mkrescue failed"; }
    mv "$work/out.iso" "$output"
    ;;

  notboot)
    mkdir "$work/iso"
    printf 'This CD has no El Torito boot record.\n' > "$work/iso/README.TXT"
    xorriso_mkisofs -R -J -V VIREO_NOTBOOT -o "$work/out.iso" "$work/iso"
    mv "$work/out.iso" "$output"
    ;;

  empty)
    truncate -s "$DISK_SIZE" "$work/empty.img"
    mv "$work/empty.img" "$output"
    ;;

  *)
    usage
    ;;
esac
