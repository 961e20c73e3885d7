//! The configuration file: `mecam::config::Config::from_toml`. The file on the boot
//! partition is whatever the user (or anyone with the SD card) put there, so it is
//! untrusted input. Property: never panics; errors name a key or the file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mecam::config::Config;

fuzz_target!(|data: &[u8]| {
    // The loader reads the file as UTF-8 text; other bytes never get this far.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Config::from_toml(text) {
        assert!(!e.to_string().is_empty());
    }
});
