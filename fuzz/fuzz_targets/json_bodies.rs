//! JSON request bodies: `mecam::api::json::parse_json`, which every endpoint taking a
//! body calls on bytes from the network (before authentication, for the login).
//!
//! The endpoint structs are private, so this parses into `serde_json::Value` and into a
//! copy of the login body's shape. Property: never panics; a body that parses as the
//! struct is valid JSON; every refusal is a 400 with a message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mecam::api::json::{MAX_JSON_BODY, parse_json};
use serde::Deserialize;

/// Shaped like the login body; `deny_unknown_fields` as the endpoints use it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Login {
    username: String,
    password: String,
    totp: Option<String>,
}

fuzz_target!(|data: &[u8]| {
    // `read_json` refuses larger bodies before parsing.
    if data.len() > MAX_JSON_BODY {
        return;
    }
    let value = parse_json::<serde_json::Value>(data);
    match parse_json::<Login>(data) {
        Ok(_) => assert!(value.is_ok(), "a valid login body is valid JSON"),
        Err(e) => {
            assert_eq!(e.status.as_u16(), 400);
            assert!(!e.message.is_empty());
        }
    }
});
