#!/bin/sh
# Buildroot post-image script: stages the boot partition (firmware, config.txt and
# one directory per slot) and assembles sdcard.img with genimage. Arguments:
# BINARIES_DIR, then BR2_ROOTFS_POST_SCRIPT_ARGS (this board directory).
set -eu

BINARIES_DIR="$1"
BOARD_DIR="${2:-$(dirname "$0")}"
BOOT="$BINARIES_DIR/boot"
DTB=bcm2710-rpi-zero-2-w.dtb

rm -rf "$BOOT"
mkdir -p "$BOOT"
for f in bootcode.bin start.elf fixup.dat; do
    cp "$BINARIES_DIR/rpi-firmware/$f" "$BOOT/"
done
cp "$BOARD_DIR/config.txt" "$BOOT/config.txt"

# Both slots get the same system when the card is flashed, so either can boot; an
# update then rewrites the inactive one. os_prefix makes the firmware load the
# kernel, device tree, overlays and cmdline.txt from the slot's directory.
for slot in a b; do
    dir="$BOOT/slot-$slot"
    mkdir -p "$dir"
    cp "$BINARIES_DIR/Image" "$dir/kernel8.img"
    cp "$BINARIES_DIR/$DTB" "$dir/"
    cp -r "$BINARIES_DIR/rpi-firmware/overlays" "$dir/"
    cp "$BOARD_DIR/cmdline-slot-$slot.txt" "$dir/cmdline.txt"
done

# A slot's boot files as an OTA payload ("boot" kind): the installer unpacks it
# into the inactive slot's directory and writes that slot's cmdline.txt itself
# (from /usr/share/mecam/boot), since the root partition depends on the slot.
# Sorted names, fixed owner and times: the same build gives the same archive.
tar -C "$BOOT/slot-a" --exclude=./cmdline.txt --sort=name --owner=0 --group=0 \
    --numeric-owner --mtime="@${SOURCE_DATE_EPOCH:-0}" -cf "$BINARIES_DIR/slot-boot.tar" .

# Every partition's content is named in genimage.cfg (files, images, empty), so
# genimage gets an empty root path instead of a copy of the target tree.
GENIMAGE_TMP="${BUILD_DIR:-$BINARIES_DIR/..}/genimage.tmp"
GENIMAGE_ROOT="${BUILD_DIR:-$BINARIES_DIR/..}/genimage.root"
rm -rf "$GENIMAGE_TMP" "$GENIMAGE_ROOT"
mkdir -p "$GENIMAGE_ROOT"
genimage \
    --rootpath "$GENIMAGE_ROOT" \
    --tmppath "$GENIMAGE_TMP" \
    --inputpath "$BINARIES_DIR" \
    --outputpath "$BINARIES_DIR" \
    --config "$BOARD_DIR/genimage.cfg"

echo "sdcard image: $BINARIES_DIR/sdcard.img"
echo "OTA payloads: $BINARIES_DIR/rootfs.squashfs (rootfs), $BINARIES_DIR/slot-boot.tar (boot)"
