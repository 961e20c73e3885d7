//! Writes the generated seed files in `corpus/fmp4_scan/` and `corpus/ota_bundle/`:
//! real segment files and real bundles, made by the firmware's and `mecam-ota`'s own
//! writers. The other targets' seeds are plain text files written by hand.
//!
//! Run from the repository root (a normal, uninstrumented build; the output is
//! committed, so this is only needed when a format changes):
//!
//!     CARGO_TARGET_DIR=/tmp/mecam-seeds cargo run --manifest-path fuzz/Cargo.toml --example seeds

use std::fs;
use std::path::Path;

use mecam::encode::h264::ParameterSets;
use mecam::record::fmp4::{SampleEntry, TrackInfo, init_segment, write_fragment};
use mecam_ota::format::{HEADER_LEN, SIGNATURE_BLOCK_LEN};
use mecam_ota::{Manifest, PayloadInfo, PayloadKind, Prelude, Sha256, Timestamp};

/// 90 kHz ticks of one frame at 25 fps.
const FRAME_TICKS: u32 = 3600;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    segments(&corpus.join("fmp4_scan"))?;
    bundles(&corpus.join("ota_bundle"))?;
    Ok(())
}

fn segments(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    fs::create_dir_all(dir)?;
    let track = TrackInfo {
        width: 1280,
        height: 720,
        parameter_sets: ParameterSets {
            // Constrained baseline, level 3.1; past the first 4 bytes, stand-ins.
            sps: bytes::Bytes::from_static(&[
                0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40, 0x50, 0x05, 0xbb, 0x01, 0xe1, 0x10, 0x8d,
                0x40,
            ]),
            pps: bytes::Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80]),
        },
    };
    let init = init_segment(&track)?;
    // Two GOPs of three frames: an IDR slice then two P slices, in AVCC (4-byte
    // lengths), with stand-in slice data.
    let mut file = init.clone();
    let mut decode_time = 0;
    for sequence in 1..=2u32 {
        let mut samples = Vec::new();
        let mut data = Vec::new();
        for (i, nal_type) in [0x65u8, 0x41, 0x41].into_iter().enumerate() {
            let nal: Vec<u8> = [nal_type, 0x88]
                .into_iter()
                .chain((0..20 + 10 * i as u8).map(|b| b.wrapping_mul(37)))
                .collect();
            data.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            data.extend_from_slice(&nal);
            samples.push(SampleEntry {
                duration: FRAME_TICKS,
                size: 4 + nal.len() as u32,
                keyframe: i == 0,
            });
        }
        file.extend_from_slice(&write_fragment(sequence, decode_time, &samples, &data)?);
        decode_time += u64::from(FRAME_TICKS) * 3;
    }
    fs::write(dir.join("two_fragments.mp4"), &file)?;
    // What a power cut leaves: the second fragment cut short.
    fs::write(dir.join("cut_short.mp4"), &file[..file.len() - 17])?;
    fs::write(dir.join("init_only.mp4"), &init)?;
    Ok(())
}

fn bundles(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    fs::create_dir_all(dir)?;
    let rootfs: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let boot: Vec<u8> = b"kernel8.img cmdline.txt bcm2710-rpi-zero-2-w.dtb".to_vec();
    let payload = |name: &str, kind, data: &[u8]| PayloadInfo {
        name: name.into(),
        kind,
        size: data.len() as u64,
        sha256: Sha256::of(data),
    };
    let manifest = |payloads| Manifest {
        format: 1,
        product: "mecam".into(),
        version: "1.4.0".parse().expect("valid"),
        board: "rpi-zero2w".into(),
        // 2026-05-01T12:00:00Z
        created: Timestamp::from_unix(1_777_636_800).expect("valid"),
        payloads,
    };
    let bundle =
        |manifest: Manifest, payloads: &[&[u8]]| -> Result<Vec<u8>, Box<dyn std::error::Error>> {
            // Unsigned: the harness signs (control bit 0) with the key it trusts.
            let mut out = Prelude::new(manifest, None)?.to_bytes();
            payloads.iter().for_each(|p| out.extend_from_slice(p));
            Ok(out)
        };
    let full = bundle(
        manifest(vec![
            payload("rootfs", PayloadKind::Rootfs, &rootfs),
            payload("boot", PayloadKind::Boot, &boot),
        ]),
        &[&rootfs, &boot],
    )?;
    let rootfs_only = bundle(
        manifest(vec![payload("rootfs", PayloadKind::Rootfs, &rootfs)]),
        &[&rootfs],
    )?;
    // Control byte: bit 0 = re-sign with the trusted key, bits 1-7 = chunk size.
    let with = |control: u8, bytes: &[u8]| [&[control][..], bytes].concat();
    fs::write(dir.join("signed_whole"), with(0x01, &full))?;
    fs::write(dir.join("signed_chunks_16"), with(16 << 1 | 1, &full))?;
    fs::write(dir.join("signed_chunks_1"), with(1 << 1 | 1, &full))?;
    fs::write(dir.join("signed_rootfs_only"), with(0x01, &rootfs_only))?;
    fs::write(dir.join("unsigned"), with(0x00, &full))?;
    let mut truncated = full.clone();
    truncated.truncate(full.len() - 20);
    fs::write(dir.join("signed_truncated"), with(0x01, &truncated))?;
    let prelude_len = full.len() - rootfs.len() - boot.len();
    assert!(prelude_len > HEADER_LEN + SIGNATURE_BLOCK_LEN);
    fs::write(dir.join("prelude_only"), with(0x01, &full[..prelude_len]))?;
    Ok(())
}
