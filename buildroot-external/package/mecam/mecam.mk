################################################################################
#
# mecam
#
################################################################################

# The repository this external tree lives in: the package is built from the working
# copy, not from a release tarball, so an image always matches the checkout.
MECAM_VERSION = $(shell git -C $(BR2_EXTERNAL_MECAM_PATH)/.. describe --always --dirty 2>/dev/null || echo local)
MECAM_SITE = $(BR2_EXTERNAL_MECAM_PATH)/..
MECAM_SITE_METHOD = local
MECAM_LICENSE = MIT or Apache-2.0
# The workspace root holds Cargo.lock; cargo-package runs `cargo install --path ./`
# inside SUBDIR, which must be the crate with the binary.
MECAM_SUBDIR = firmware
# turbojpeg-sys builds its vendored libjpeg-turbo with CMake: the host's if new
# enough, else Buildroot's.
MECAM_DEPENDENCIES = $(BR2_CMAKE_HOST_DEPENDENCY)

# Never copy build outputs (tens of GB), the fuzzing workspace (not a workspace
# member) or a Buildroot output directory into the package's build directory. The
# other workspace members stay: cargo refuses a workspace with a member missing.
MECAM_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /target --exclude /fuzz --exclude /output --exclude .git

# cargo-package vendors crates in its download step, which a `local` package never
# runs; fetch them into Buildroot's cargo home instead, so that the build step's
# `cargo build --offline --locked` finds every crate of Cargo.lock. This is the one
# step that needs the network. A pre-configure hook, because only then is host-rustc
# (a dependency) sure to be installed.
define MECAM_CARGO_FETCH
	cd $(@D) && $(HOST_MAKE_ENV) $(PKG_COMMON_CARGO_ENV) \
		cargo fetch --locked --manifest-path Cargo.toml
endef
MECAM_PRE_CONFIGURE_HOOKS += MECAM_CARGO_FETCH

# Only the service's package, with its default features; the other workspace
# members (OTA host tool, test suite, benches) are not part of the image.
MECAM_CARGO_BUILD_OPTS = -p mecam
MECAM_CARGO_ENV = \
	CMAKE=$(BR2_CMAKE) \
	PKG_CONFIG_ALLOW_CROSS=1

MECAM_OTA_KEYS_DIR = $(call qstrip,$(BR2_PACKAGE_MECAM_OTA_KEYS_DIR))

# The binary is installed by cargo-package (`cargo install` to /usr/bin); the model
# and the trusted keys are data the service reads at run time.
define MECAM_INSTALL_DATA
	$(INSTALL) -d -m 0755 $(TARGET_DIR)/usr/share/mecam/models
	$(INSTALL) -m 0644 $(@D)/firmware/models/*.tflite $(@D)/firmware/models/*.f32 \
		$(@D)/firmware/models/SHA256SUMS $(@D)/firmware/models/LICENSE.* \
		$(TARGET_DIR)/usr/share/mecam/models/
	cd $(TARGET_DIR)/usr/share/mecam/models && sha256sum -c --quiet SHA256SUMS
	$(INSTALL) -d -m 0755 $(TARGET_DIR)/etc/mecam/ota-keys
	rm -f $(TARGET_DIR)/etc/mecam/ota-keys/*.pub
	@if ! ls $(MECAM_OTA_KEYS_DIR)/*.pub >/dev/null 2>&1; then \
		echo "mecam: no *.pub in BR2_PACKAGE_MECAM_OTA_KEYS_DIR ($(MECAM_OTA_KEYS_DIR));" \
			"make one with 'mecam-bundle keygen' (see docs/ota.md)" >&2; \
		exit 1; \
	fi
	$(INSTALL) -m 0644 $(MECAM_OTA_KEYS_DIR)/*.pub $(TARGET_DIR)/etc/mecam/ota-keys/
endef
MECAM_POST_INSTALL_TARGET_HOOKS += MECAM_INSTALL_DATA

$(eval $(cargo-package))
