//! Whether a device should install a verified bundle.
//!
//! Separate from verification on purpose: a valid signature says who made a bundle,
//! not that it fits this device. `force` overrides only the version rules — a bundle
//! for another board or product would leave the device unbootable, so nothing
//! overrides those.

use crate::manifest::{Manifest, PRODUCT, PayloadKind};
use crate::version::Version;

/// Payload kinds every installable bundle carries: an update replaces a whole slot,
/// and a root filesystem booted with the previous version's kernel and modules (or the
/// reverse) is not a combination anyone has tested.
pub const REQUIRED_KINDS: [PayloadKind; 2] = [PayloadKind::Rootfs, PayloadKind::Boot];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("bundle is for product {found:?}, not {PRODUCT:?}")]
    WrongProduct { found: String },
    #[error("bundle is for board {bundle:?}, but this device is {device:?}")]
    WrongBoard { bundle: String, device: String },
    #[error("bundle has no {0} payload; an update must replace the whole slot")]
    MissingPayload(PayloadKind),
    #[error(
        "bundle version {bundle} is older than the running version {current}; force it to downgrade"
    )]
    Downgrade { bundle: Version, current: Version },
    #[error("version {0} is already running; force it to reinstall")]
    SameVersion(Version),
}

/// Decides whether `manifest` may replace the running system `current` on `board`.
pub fn check_install(
    manifest: &Manifest,
    current: &Version,
    board: &str,
    force: bool,
) -> Result<(), Refusal> {
    if manifest.product != PRODUCT {
        return Err(Refusal::WrongProduct {
            found: manifest.product.clone(),
        });
    }
    if manifest.board != board {
        return Err(Refusal::WrongBoard {
            bundle: manifest.board.clone(),
            device: board.to_owned(),
        });
    }
    if let Some(kind) = REQUIRED_KINDS
        .into_iter()
        .find(|&k| manifest.payload(k).is_none())
    {
        return Err(Refusal::MissingPayload(kind));
    }
    if force {
        return Ok(());
    }
    match manifest.version.cmp(current) {
        std::cmp::Ordering::Greater => Ok(()),
        std::cmp::Ordering::Equal => Err(Refusal::SameVersion(current.clone())),
        std::cmp::Ordering::Less => Err(Refusal::Downgrade {
            bundle: manifest.version.clone(),
            current: current.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::sample;

    const BOARD: &str = "rpi-zero2w";

    fn with_version(v: &str) -> Manifest {
        Manifest {
            version: v.parse().unwrap(),
            ..sample()
        }
    }

    fn current(v: &str) -> Version {
        v.parse().unwrap()
    }

    #[test]
    fn upgrades_are_allowed() {
        for (bundle, running) in [
            ("1.2.4", "1.2.3"),
            ("2.0.0", "1.99.99"),
            ("1.0.0", "1.0.0-rc.2"),
            ("1.0.0-rc.2", "1.0.0-rc.1"),
        ] {
            assert_eq!(
                check_install(&with_version(bundle), &current(running), BOARD, false),
                Ok(()),
                "{bundle} over {running}"
            );
        }
    }

    #[test]
    fn downgrades_and_reinstalls_need_force() {
        let m = with_version("1.2.3");
        assert_eq!(
            check_install(&m, &current("1.2.4"), BOARD, false),
            Err(Refusal::Downgrade {
                bundle: current("1.2.3"),
                current: current("1.2.4")
            })
        );
        assert_eq!(
            check_install(&with_version("1.0.0-rc.1"), &current("1.0.0"), BOARD, false),
            Err(Refusal::Downgrade {
                bundle: current("1.0.0-rc.1"),
                current: current("1.0.0")
            })
        );
        assert_eq!(
            check_install(&m, &current("1.2.3"), BOARD, false),
            Err(Refusal::SameVersion(current("1.2.3")))
        );
        assert_eq!(check_install(&m, &current("1.2.4"), BOARD, true), Ok(()));
        assert_eq!(check_install(&m, &current("1.2.3"), BOARD, true), Ok(()));
        let msg = check_install(&m, &current("1.2.4"), BOARD, false)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("1.2.3") && msg.contains("1.2.4") && msg.contains("older"),
            "{msg}"
        );
    }

    #[test]
    fn other_boards_and_products_are_refused_even_when_forced() {
        let m = with_version("9.0.0");
        for force in [false, true] {
            assert_eq!(
                check_install(&m, &current("1.0.0"), "rpi-4", force),
                Err(Refusal::WrongBoard {
                    bundle: BOARD.into(),
                    device: "rpi-4".into()
                })
            );
            let other = Manifest {
                product: "othercam".into(),
                ..m.clone()
            };
            assert_eq!(
                check_install(&other, &current("1.0.0"), BOARD, force),
                Err(Refusal::WrongProduct {
                    found: "othercam".into()
                })
            );
        }
    }

    #[test]
    fn a_bundle_must_replace_the_whole_slot() {
        let mut m = with_version("9.0.0");
        m.payloads.retain(|p| p.kind != PayloadKind::Boot);
        assert_eq!(
            check_install(&m, &current("1.0.0"), BOARD, true),
            Err(Refusal::MissingPayload(PayloadKind::Boot))
        );
    }
}
