//! `mecam-bundle`: the maintainers' tool for ME_CAM update bundles.
//!
//! Every command streams: payloads are never read into memory whole, so bundles of any
//! size work on a small build machine. Outputs are written to `OUT.partial` and renamed
//! into place only when complete, so an interrupted command never leaves a file that
//! looks like a finished bundle.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use mecam_ota::create::{copy_hashing, measure, resign, write_bundle};
use mecam_ota::keys::write_new_keypair;
use mecam_ota::{
    Manifest, PRODUCT, PayloadInfo, PayloadKind, Prelude, SigningKey, Timestamp, TrustedKeys,
    Version, verify_reader,
};

#[derive(Parser)]
#[command(
    name = "mecam-bundle",
    version,
    about = "Create, sign, verify and inspect ME_CAM update bundles"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate an Ed25519 key pair: NAME.key (PKCS#8 DER, mode 0600) and NAME.pub (hex)
    Keygen {
        /// Path and base name of the two files
        #[arg(long, value_name = "DIR/NAME")]
        out: PathBuf,
    },
    /// Create a bundle from payload files (unsigned unless --key is given)
    Create {
        /// Release version, MAJOR.MINOR.PATCH[-PRERELEASE]
        #[arg(long)]
        version: Version,
        /// Board the bundle is for, e.g. rpi-zero2w
        #[arg(long)]
        board: String,
        /// A payload: rootfs=IMAGE or boot=ARCHIVE; repeat for each
        #[arg(long = "payload", value_name = "KIND=PATH", required = true)]
        payloads: Vec<PayloadArg>,
        /// Sign with this private key
        #[arg(long, value_name = "K.key")]
        key: Option<PathBuf>,
        /// Product name; devices refuse anything but the default
        #[arg(long, default_value = PRODUCT)]
        product: String,
        /// Output bundle
        #[arg(short, long, value_name = "OUT")]
        output: PathBuf,
    },
    /// Sign a bundle (replacing any signature), checking its payloads on the way
    Sign {
        #[arg(long, value_name = "K.key")]
        key: PathBuf,
        input: PathBuf,
        #[arg(short, long, value_name = "OUT")]
        output: PathBuf,
    },
    /// Verify a bundle exactly as a device would; exit status 0 only if it is valid
    Verify {
        /// A .pub file or a directory of them
        #[arg(long, value_name = "DIR_OR_FILE")]
        keys: PathBuf,
        input: PathBuf,
    },
    /// Show a bundle's manifest and signer, and check each payload's hash
    Inspect {
        /// Also check the signature against these keys (a .pub file or a directory)
        #[arg(long, value_name = "DIR_OR_FILE")]
        keys: Option<PathBuf>,
        input: PathBuf,
    },
}

#[derive(Clone)]
struct PayloadArg {
    kind: PayloadKind,
    path: PathBuf,
}

impl FromStr for PayloadArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, path) = s
            .split_once('=')
            .ok_or_else(|| format!("expected KIND=PATH, got {s:?}"))?;
        if path.is_empty() {
            return Err(format!("no path in {s:?}"));
        }
        Ok(PayloadArg {
            kind: kind.parse()?,
            path: path.into(),
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen { out } => keygen(&out),
        Command::Create {
            version,
            board,
            payloads,
            key,
            product,
            output,
        } => create(version, board, product, &payloads, key.as_deref(), &output),
        Command::Sign { key, input, output } => sign(&key, &input, &output),
        Command::Verify { keys, input } => verify(&keys, &input),
        Command::Inspect { keys, input } => inspect(keys.as_deref(), &input),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mecam-bundle: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn keygen(out: &Path) -> Result<ExitCode> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let (key_path, pub_path, id) = write_new_keypair(out)?;
    println!("private key: {} (keep it offline)", key_path.display());
    println!("public key:  {}", pub_path.display());
    println!("key id:      {id}");
    Ok(ExitCode::SUCCESS)
}

fn create(
    version: Version,
    board: String,
    product: String,
    payloads: &[PayloadArg],
    key: Option<&Path>,
    output: &Path,
) -> Result<ExitCode> {
    // Checked before reading anything: measuring a root filesystem takes a while.
    for (i, p) in payloads.iter().enumerate() {
        if payloads[..i].iter().any(|q| q.kind == p.kind) {
            bail!("--payload {}=... given more than once", p.kind);
        }
    }
    let key = key.map(SigningKey::load).transpose()?;
    let mut infos = Vec::new();
    for p in payloads {
        let file = open(&p.path)?;
        let (size, sha256) =
            measure(file).with_context(|| format!("reading {}", p.path.display()))?;
        infos.push(PayloadInfo {
            // One payload per kind, so the kind is a sufficient name.
            name: p.kind.as_str().to_owned(),
            kind: p.kind,
            size,
            sha256,
        });
    }
    let created = Timestamp::now_or_source_date_epoch()
        .context("the clock (or SOURCE_DATE_EPOCH) is outside 1970-9999")?;
    let manifest = Manifest {
        format: mecam_ota::format::FORMAT_VERSION,
        product,
        version,
        board,
        created,
        payloads: infos,
    };
    let prelude = Prelude::new(manifest, key.as_ref())?;
    let mut out = PendingOutput::create(output)?;
    let len = write_bundle(out.file(), &prelude, |index, _| open(&payloads[index].path))?;
    out.commit()?;
    println!("wrote {} ({len} bytes)", output.display());
    match &key {
        Some(key) => println!("signed by key {}", key.key_id()),
        None => println!("unsigned: sign it with `mecam-bundle sign --key K.key`"),
    }
    Ok(ExitCode::SUCCESS)
}

fn sign(key: &Path, input: &Path, output: &Path) -> Result<ExitCode> {
    let key = SigningKey::load(key)?;
    let mut reader = open(input)?;
    let mut out = PendingOutput::create(output)?;
    let prelude = resign(&mut reader, out.file(), &key)
        .with_context(|| format!("{} is not a valid bundle", input.display()))?;
    out.commit()?;
    println!(
        "signed {} {} with key {} -> {}",
        prelude.manifest.product,
        prelude.manifest.version,
        key.key_id(),
        output.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(keys: &Path, input: &Path) -> Result<ExitCode> {
    let keys = TrustedKeys::load(keys)?;
    let bundle = verify_reader(open(input)?, keys, |_| Ok(()))
        .with_context(|| format!("{} REFUSED", input.display()))?;
    let m = &bundle.manifest;
    println!(
        "OK: {} {} for {}, created {}, signed by key {}, {} bytes",
        m.product, m.version, m.board, m.created, bundle.key_id, bundle.len
    );
    for p in &m.payloads {
        println!(
            "  {:<8} {:<6} {:>12} bytes  sha256 {}",
            p.name, p.kind, p.size, p.sha256
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(keys: Option<&Path>, input: &Path) -> Result<ExitCode> {
    let keys = keys.map(TrustedKeys::load).transpose()?;
    let mut reader = open(input)?;
    let prelude = Prelude::read(&mut reader)
        .with_context(|| format!("{} is not a readable bundle", input.display()))?;
    let mut ok = true;

    println!("format: {}", prelude.header.format);
    println!("manifest:");
    println!("{}", serde_json::to_string_pretty(&prelude.manifest)?);
    let signature = if prelude.signature.is_unsigned() {
        "none (unsigned)".to_owned()
    } else {
        let id = prelude.signature.key_id;
        match &keys {
            None => format!("key {id} (not checked; pass --keys to check)"),
            Some(keys) => match prelude.verify_signature(keys) {
                Ok(_) => format!("key {id}, valid"),
                Err(e) => {
                    ok = false;
                    format!("key {id}, INVALID: {e}")
                }
            },
        }
    };
    println!("signature: {signature}");

    println!("payloads:");
    let mut truncated = false;
    for p in &prelude.manifest.payloads {
        let status = if truncated {
            ok = false;
            "MISSING".to_owned()
        } else {
            let (got, actual) = copy_hashing(&mut reader, &mut io::sink(), p.size)
                .with_context(|| format!("reading {}", input.display()))?;
            if got < p.size {
                truncated = true;
                ok = false;
                format!("TRUNCATED ({got} of {} bytes)", p.size)
            } else if actual != p.sha256 {
                ok = false;
                format!("HASH MISMATCH (content is {actual})")
            } else {
                "hash ok".to_owned()
            }
        };
        println!("  {:<8} {:>12} bytes  {status}", p.name, p.size);
    }
    let trailing = io::copy(&mut reader, &mut io::sink())?;
    if trailing > 0 {
        ok = false;
        println!("trailing data: {trailing} bytes after the last payload");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn open(path: &Path) -> io::Result<File> {
    File::open(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// An output file written under a temporary name and renamed into place by `commit`;
/// dropped uncommitted (on any error), the temporary file is removed.
struct PendingOutput {
    file: File,
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl PendingOutput {
    fn create(dest: &Path) -> Result<Self> {
        let mut tmp = OsString::from(dest.as_os_str());
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        Ok(PendingOutput {
            file,
            tmp,
            dest: dest.to_owned(),
            committed: false,
        })
    }

    fn file(&mut self) -> &mut File {
        &mut self.file
    }

    fn commit(mut self) -> Result<()> {
        self.file.flush()?;
        self.file
            .sync_all()
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        if self.dest.is_dir() {
            bail!("{} is a directory", self.dest.display());
        }
        fs::rename(&self.tmp, &self.dest).with_context(|| {
            format!("renaming {} to {}", self.tmp.display(), self.dest.display())
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PendingOutput {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
