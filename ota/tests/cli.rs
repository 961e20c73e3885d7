//! The `mecam-bundle` binary as maintainers and scripts use it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_mecam-bundle");

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn bundle_tool(args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN)
        .args(args)
        // Fixed creation time: reproducible output, checked below.
        .env("SOURCE_DATE_EPOCH", "1777636800")
        .output()
        .expect("run mecam-bundle");
    Run {
        ok: status.success(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn ok(args: &[&str]) -> Run {
    let run = bundle_tool(args);
    assert!(run.ok, "{args:?} failed:\n{}\n{}", run.stdout, run.stderr);
    run
}

fn fails(args: &[&str]) -> Run {
    let run = bundle_tool(args);
    assert!(!run.ok, "{args:?} should have failed:\n{}", run.stdout);
    run
}

struct Workspace {
    dir: TempDir,
}

impl Workspace {
    /// Payload files and one key pair `keys/release`.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Larger than the tool's 64 KiB buffers, so copies take several rounds.
        let rootfs: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(dir.path().join("rootfs.img"), rootfs).unwrap();
        fs::write(dir.path().join("boot.tar"), b"kernel8.img and friends").unwrap();
        let ws = Workspace { dir };
        ok(&["keygen", "--out", &ws.s("keys/release")]);
        ws
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.p(name).to_str().unwrap().to_owned()
    }

    fn create(&self, out: &str, version: &str, key: Option<&str>) -> Run {
        let mut args = vec![
            "create".to_owned(),
            "--version".into(),
            version.into(),
            "--board".into(),
            "rpi-zero2w".into(),
            "--payload".into(),
            format!("rootfs={}", self.s("rootfs.img")),
            "--payload".into(),
            format!("boot={}", self.s("boot.tar")),
            "-o".into(),
            self.s(out),
        ];
        if let Some(key) = key {
            args.extend(["--key".into(), self.s(key)]);
        }
        ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn damage(&self, name: &str, out: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = fs::read(self.p(name)).unwrap();
        f(&mut bytes);
        fs::write(self.p(out), bytes).unwrap();
    }
}

#[test]
fn keygen_create_verify() {
    let ws = Workspace::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(ws.p("keys/release.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "private key must not be readable by others"
        );
    }
    let pub_text = fs::read_to_string(ws.p("keys/release.pub")).unwrap();
    assert_eq!(pub_text.trim().len(), 64);

    ws.create("v1.bundle", "1.0.0", Some("keys/release.key"));
    let run = ok(&["verify", "--keys", &ws.s("keys"), &ws.s("v1.bundle")]);
    assert!(
        run.stdout.starts_with("OK: mecam 1.0.0 for rpi-zero2w"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("2026-05-01T12:00:00Z"),
        "{}",
        run.stdout
    );
    // A single key file works as well as a directory.
    ok(&[
        "verify",
        "--keys",
        &ws.s("keys/release.pub"),
        &ws.s("v1.bundle"),
    ]);
    // No stray temporary file next to the output.
    assert!(!ws.p("v1.bundle.partial").exists());

    // Same inputs and SOURCE_DATE_EPOCH: byte-identical bundle (Ed25519 is deterministic).
    ws.create("again.bundle", "1.0.0", Some("keys/release.key"));
    assert_eq!(
        fs::read(ws.p("v1.bundle")).unwrap(),
        fs::read(ws.p("again.bundle")).unwrap()
    );
}

#[test]
fn create_unsigned_then_sign() {
    let ws = Workspace::new();
    let run = ws.create("unsigned.bundle", "1.1.0-rc.1", None);
    assert!(run.stdout.contains("unsigned"), "{}", run.stdout);
    let run = fails(&["verify", "--keys", &ws.s("keys"), &ws.s("unsigned.bundle")]);
    assert!(run.stderr.contains("not signed"), "{}", run.stderr);

    ok(&[
        "sign",
        "--key",
        &ws.s("keys/release.key"),
        &ws.s("unsigned.bundle"),
        "-o",
        &ws.s("signed.bundle"),
    ]);
    ok(&["verify", "--keys", &ws.s("keys"), &ws.s("signed.bundle")]);

    // Signing in place works too (output goes through a temporary file).
    ok(&[
        "sign",
        "--key",
        &ws.s("keys/release.key"),
        &ws.s("unsigned.bundle"),
        "-o",
        &ws.s("unsigned.bundle"),
    ]);
    ok(&["verify", "--keys", &ws.s("keys"), &ws.s("unsigned.bundle")]);
}

#[test]
fn tampered_truncated_and_foreign_bundles_fail_verify_with_a_reason() {
    let ws = Workspace::new();
    ws.create("good.bundle", "2.0.0", Some("keys/release.key"));
    let verify = |name: &str| fails(&["verify", "--keys", &ws.s("keys"), &ws.s(name)]).stderr;

    ws.damage("good.bundle", "payload.bundle", |b| {
        let i = b.len() - 1000; // inside the rootfs payload
        b[i] ^= 0x40;
    });
    let err = verify("payload.bundle");
    assert!(
        err.contains("REFUSED") && err.contains("\"rootfs\"") && err.contains("SHA-256 mismatch"),
        "{err}"
    );

    ws.damage("good.bundle", "manifest.bundle", |b| b[40] ^= 0x01);
    let err = verify("manifest.bundle");
    assert!(err.contains("signature"), "{err}");

    ws.damage("good.bundle", "short.bundle", |b| b.truncate(b.len() - 1));
    let err = verify("short.bundle");
    assert!(
        err.contains("truncated") && err.contains("\"boot\""),
        "{err}"
    );

    ws.damage("good.bundle", "long.bundle", |b| {
        b.extend_from_slice(b"junk")
    });
    assert!(verify("long.bundle").contains("after the last payload"));

    fs::write(ws.p("not.bundle"), b"hello").unwrap();
    assert!(verify("not.bundle").contains("truncated: the header"));

    ok(&["keygen", "--out", &ws.s("other/key")]);
    let run = fails(&["verify", "--keys", &ws.s("other"), &ws.s("good.bundle")]);
    assert!(run.stderr.contains("not trusted"), "{}", run.stderr);

    let run = fails(&["verify", "--keys", &ws.s("nowhere"), &ws.s("good.bundle")]);
    assert!(run.stderr.contains("nowhere"), "{}", run.stderr);
}

#[test]
fn inspect_shows_the_manifest_and_checks_payloads() {
    let ws = Workspace::new();
    ws.create("good.bundle", "3.1.4", Some("keys/release.key"));
    let key_id = ok(&["verify", "--keys", &ws.s("keys"), &ws.s("good.bundle")])
        .stdout
        .split("signed by key ")
        .nth(1)
        .unwrap()[..16]
        .to_owned();

    let run = ok(&["inspect", &ws.s("good.bundle")]);
    assert!(
        run.stdout.contains("\"version\": \"3.1.4\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("key {key_id} (not checked")),
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.matches("hash ok").count(), 2, "{}", run.stdout);

    let run = ok(&["inspect", "--keys", &ws.s("keys"), &ws.s("good.bundle")]);
    assert!(
        run.stdout.contains(&format!("key {key_id}, valid")),
        "{}",
        run.stdout
    );

    ws.damage("good.bundle", "bad.bundle", |b| {
        let i = b.len() - 1000;
        b[i] ^= 1;
    });
    let run = fails(&["inspect", &ws.s("bad.bundle")]);
    assert!(run.stdout.contains("HASH MISMATCH"), "{}", run.stdout);
    assert_eq!(
        run.stdout.matches("hash ok").count(),
        1,
        "boot still fine: {}",
        run.stdout
    );

    ws.create("unsigned.bundle", "3.1.4", None);
    let run = ok(&["inspect", &ws.s("unsigned.bundle")]);
    assert!(run.stdout.contains("unsigned"), "{}", run.stdout);
}

#[test]
fn bad_arguments_are_refused_before_anything_is_written() {
    let ws = Workspace::new();
    let rootfs = format!("rootfs={}", ws.s("rootfs.img"));
    let out = ws.s("x.bundle");
    let create = |extra: &[&str]| {
        let mut args = vec!["create", "--board", "rpi-zero2w", "-o", &out];
        args.extend_from_slice(extra);
        fails(&args).stderr
    };
    assert!(create(&["--version", "1.2", "--payload", &rootfs]).contains("invalid version"));
    let kernel = format!("kernel={}", ws.s("rootfs.img"));
    assert!(create(&["--version", "1.2.0", "--payload", &kernel]).contains("unknown payload kind"));
    assert!(
        create(&[
            "--version",
            "1.2.0",
            "--payload",
            &rootfs,
            "--payload",
            &rootfs
        ])
        .contains("--payload rootfs=... given more than once")
    );
    let missing = format!("rootfs={}", ws.s("missing.img"));
    assert!(create(&["--version", "1.2.0", "--payload", &missing]).contains("missing.img"));
    assert!(!Path::new(&out).exists());
    assert!(!ws.p("x.bundle.partial").exists());

    // keygen never overwrites a key.
    let run = fails(&["keygen", "--out", &ws.s("keys/release")]);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
}
