//! The `Range` header of recording downloads and playback (what a video player sends
//! to seek): `mecam::api::recordings::range::parse_range`.
//!
//! Input: 8 bytes of content length (little-endian), then the header value (UTF-8).
//! Properties: nothing panics; a range to serve lies inside the content.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mecam::api::recordings::range::parse_range;

fuzz_target!(|data: &[u8]| {
    let Some((len, header)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    let len = u64::from_le_bytes(*len);
    if let Ok(Some((first, last))) = parse_range(header, len) {
        assert!(
            first <= last && last < len,
            "{header:?} of {len}: {first}-{last}"
        );
    }
});
