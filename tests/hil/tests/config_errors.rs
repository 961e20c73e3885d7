//! A bad setting stops start-up at once with exit code 2 and a message that names the
//! setting, so a user editing the file on the SD card can fix it from the log alone.

use std::path::Path;
use std::time::Duration;

use mecam_hil::{run_to_exit, skip_if_remote};

/// "Fast": refusing a configuration needs no camera, network or certificate.
const FAST: Duration = Duration::from_secs(5);

/// Runs `mecam run --data <tmp>/data --listen 127.0.0.1:0 EXTRA` (plus `--config` with
/// `file` if given; EXTRA may replace `--data` or `--listen`) and checks it is refused
/// with every one of `expect` in its log.
fn assert_refused(test: &str, file: Option<&str>, extra: &[&str], expect: &[&str]) {
    if skip_if_remote(test, "it runs the mecam binary on this machine") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut args: Vec<String> = vec!["run".into()];
    for (flag, default) in [("--data", path(&data)), ("--listen", "127.0.0.1:0".into())] {
        if !extra.contains(&flag) {
            args.extend([flag.into(), default]);
        }
    }
    if let Some(text) = file {
        let config = dir.path().join("mecam.toml");
        std::fs::write(&config, text).unwrap();
        args.extend(["--config".into(), path(&config)]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));

    let exited = run_to_exit(&args, Duration::from_secs(30)).expect("mecam exits by itself");
    eprintln!("{test}: {:?}\n{}", exited.elapsed, exited.log.trim());
    assert_eq!(
        exited.status.code(),
        Some(2),
        "{test}: exit status {}; log:\n{}",
        exited.status,
        exited.log
    );
    for needle in expect {
        assert!(
            exited.log.contains(needle),
            "{test}: the message should mention {needle:?}; log:\n{}",
            exited.log
        );
    }
    assert!(
        !exited.log.contains("serving HTTPS"),
        "{test}: refused configurations must not start serving"
    );
    assert!(exited.elapsed < FAST, "{test}: took {:?}", exited.elapsed);
}

fn path(p: &Path) -> String {
    p.to_str().expect("temporary paths are UTF-8").to_owned()
}

#[test]
fn out_of_range_value_in_the_file_names_the_key_and_the_range() {
    assert_refused(
        "out_of_range_value_in_the_file",
        Some("[camera]\nfps = 500\n"),
        &[],
        &["camera.fps", "500", "1 to 120"],
    );
}

#[test]
fn unknown_key_in_the_file_is_refused_with_the_allowed_keys() {
    assert_refused(
        "unknown_key_in_the_file",
        Some("[camera]\nfsp = 10\n"),
        &[],
        &["camera.fsp", "fps"],
    );
}

#[test]
fn malformed_toml_names_the_line() {
    assert_refused(
        "malformed_toml",
        Some("[camera]\nfps = = 3\n"),
        &[],
        &["line 2", "TOML"],
    );
}

#[test]
fn zero_fps_flag_names_the_flag() {
    assert_refused(
        "zero_fps_flag",
        None,
        &["--fps", "0"],
        &["--fps", "1 to 120"],
    );
}

#[test]
fn odd_frame_size_names_the_flag() {
    assert_refused(
        "odd_frame_size",
        None,
        &["--size", "641x480"],
        &["--size", "641x480", "even"],
    );
}

#[test]
fn unknown_camera_names_the_flag_and_the_choices() {
    assert_refused(
        "unknown_camera",
        None,
        &["--camera", "webcam"],
        &["--camera", "webcam", "synthetic", "replay:PATH"],
    );
}

#[test]
fn missing_replay_path_is_named() {
    let missing = "/nonexistent/mecam-hil-frames";
    assert_refused(
        "missing_replay_path",
        None,
        &["--camera", &format!("replay:{missing}")],
        &["camera.source", missing],
    );
}

#[test]
fn port_in_use_names_the_setting_and_says_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_refused(
        "port_in_use",
        None,
        &["--listen", &addr],
        &["server.listen", &addr, "already in use"],
    );
    drop(taken);
}

#[test]
fn unwritable_data_directory_is_named() {
    // Under a regular file no directory can be made, even by root (tests may run as root,
    // for whom permission bits do not apply).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    let data = file.join("data");
    let data = path(&data);
    assert_refused(
        "unwritable_data_directory",
        None,
        &["--data", &data],
        &[&data, "data_dir"],
    );
}

#[test]
fn too_short_session_idle_timeout_names_the_key_and_the_range() {
    assert_refused(
        "too_short_session_idle_timeout",
        Some("[auth]\nsession_idle_secs = 5\n"),
        &[],
        &["auth.session_idle_secs", "5", "10 to 86400"],
    );
}

#[test]
fn allow_public_clients_must_be_a_boolean() {
    assert_refused(
        "allow_public_clients_must_be_a_boolean",
        Some("[server]\nallow_public_clients = \"yes\"\n"),
        &[],
        &["server.allow_public_clients", "true", "false"],
    );
}

#[test]
fn unknown_auth_key_lists_the_allowed_ones() {
    assert_refused(
        "unknown_auth_key",
        Some("[auth]\nsession_idle_minutes = 5\n"),
        &[],
        &[
            "auth.session_idle_minutes",
            "session_idle_secs",
            "session_max_days",
        ],
    );
}
