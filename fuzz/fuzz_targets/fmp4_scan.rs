//! Segment files read back: `mecam::record::fmp4::scan`, which start-up recovery runs
//! on every segment (a power cut leaves any prefix of a file, and a damaged card
//! anything at all), and the `Stitcher` that export and playback run on the fragments
//! it finds.
//!
//! Properties: nothing panics; the fragments `scan` lists lie end to end from the init
//! segment to `complete_len`; whatever it accepts the stitcher can join, and the
//! joined stream scans again to the same fragments.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mecam::record::fmp4::{Stitcher, scan};

fuzz_target!(|data: &[u8]| {
    let Ok(found) = scan(data) else {
        return;
    };
    assert!(found.init_len <= found.complete_len && found.complete_len <= data.len());
    let mut pos = found.init_len as u64;
    for f in &found.fragments {
        assert_eq!(f.offset, pos, "fragments lie end to end");
        assert!(f.len > 0);
        pos += f.len;
    }
    assert_eq!(pos, found.complete_len as u64);

    let init = &data[..found.init_len];
    let mut stitcher = Stitcher::new(init).expect("scan accepted this init segment");
    assert!(stitcher.check_init(init).is_ok());
    let mut out = init.to_vec();
    for f in &found.fragments {
        let start = out.len();
        out.extend_from_slice(&data[f.offset as usize..(f.offset + f.len) as usize]);
        // A 32-bit `tfdt` may not hold the joined stream's time: an error, not a bug.
        let Ok(info) = stitcher.rewrite(&mut out[start..]) else {
            return;
        };
        assert_eq!((info.offset, info.len), (start as u64, f.len));
        assert_eq!((info.samples, info.duration), (f.samples, f.duration));
    }
    let again = scan(&out).expect("the stitched stream has the same init segment");
    assert_eq!(again.fragments.len(), found.fragments.len());
    assert_eq!(again.complete_len, out.len());
});
