#!/bin/sh
# Buildroot post-build script: runs on the target tree before the root filesystem
# image is made. Arguments: TARGET_DIR, then BR2_ROOTFS_POST_SCRIPT_ARGS (this
# board directory).
set -eu

TARGET_DIR="$1"
BOARD_DIR="${2:-$(dirname "$0")}"

# Mount points of a read-only root: nothing can create them at run time.
mkdir -p "$TARGET_DIR/boot" "$TARGET_DIR/data"

# What the OTA agent writes to the boot partition when it stages an update: the
# trial configuration naming the new slot, and that slot's cmdline.txt (the boot
# payload carries kernel, device tree and overlays, but which partition is a slot's
# root is a property of the card, not of the release).
for f in tryboot.txt.in cmdline-slot-a.txt cmdline-slot-b.txt; do
    install -D -m 0644 "$BOARD_DIR/$f" "$TARGET_DIR/usr/share/mecam/boot/$f"
done

# /etc/fstab: the root stays read-only (the kernel mounts it ro; no remount);
# the boot partition is mounted read-only too and remounted read-write only while
# the init scripts import settings or the OTA agent writes a slot. /data is mounted
# by S02data after its first-boot setup, so it is not listed here.
cat >"$TARGET_DIR/etc/fstab" <<'FSTAB'
# <file system>	<mount pt>	<type>	<options>	<dump>	<pass>
/dev/root	/	squashfs	ro,noauto	0	0
proc		/proc	proc	defaults	0	0
devpts		/dev/pts	devpts	defaults,gid=5,mode=620,ptmxmode=0666	0	0
tmpfs		/dev/shm	tmpfs	mode=0777	0	0
tmpfs		/tmp	tmpfs	mode=1777,size=32M	0	0
tmpfs		/run	tmpfs	mode=0755,nosuid,nodev	0	0
sysfs		/sys	sysfs	defaults	0	0
/dev/mmcblk0p1	/boot	vfat	ro,noatime,fmask=0077,dmask=0077	0	0
FSTAB
