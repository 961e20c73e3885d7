# The packages of the ME_CAM tree. The board files (board/rpi-zero2w) and the root
# filesystem overlay (overlay/) live at the top of the repository, next to this tree,
# because the emulated test device builds its image from the same files without
# Buildroot; the defconfig points at them through $(BR2_EXTERNAL_MECAM_PATH)/..
include $(sort $(wildcard $(BR2_EXTERNAL_MECAM_PATH)/package/*/*.mk))
