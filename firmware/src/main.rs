use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mecam::config::{Config, Overrides};

/// ME_CAM: a private security camera that keeps everything in your house.
#[derive(Parser)]
#[command(name = "mecam", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the camera service.
    Run(RunArgs),
    /// Decrypt a recording copied off the card or exported, with the recovery key
    /// shown at setup. Works offline; needs nothing but the file and the key.
    Decrypt(DecryptArgs),
}

#[derive(clap::Args)]
struct DecryptArgs {
    /// The recovery key (spaces, dashes and case do not matter).
    #[arg(
        long,
        value_name = "KEY",
        env = "MECAM_RECOVERY_KEY",
        hide_env_values = true
    )]
    recovery_key: String,
    /// Encrypted segment or export.
    input: PathBuf,
    /// Where to write the MP4.
    output: PathBuf,
}

#[derive(clap::Args)]
struct RunArgs {
    /// TOML configuration file; flags below override its values.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (certificates, recordings, index).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// HTTPS address, e.g. 127.0.0.1:8443 or 0.0.0.0:443.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Optional plain-HTTP address that only redirects to HTTPS.
    #[arg(long, value_name = "ADDR:PORT")]
    http_redirect_listen: Option<String>,
    /// Frame source: synthetic, replay:PATH or auto.
    #[arg(long, value_name = "SOURCE")]
    camera: Option<String>,
    /// Frame size, e.g. 1280x720.
    #[arg(long, value_name = "WxH")]
    size: Option<String>,
    /// Frames per second (1-120).
    #[arg(long, value_name = "N")]
    fps: Option<String>,
    /// JPEG quality for the live view (1-100).
    #[arg(long, value_name = "Q")]
    jpeg_quality: Option<String>,
    /// Seed of the synthetic scene.
    #[arg(long, value_name = "N")]
    seed: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Run(args) => run(args),
        Command::Decrypt(args) => decrypt(args),
    }
}

fn run(args: RunArgs) -> ExitCode {
    let overrides = Overrides {
        data_dir: args.data,
        listen: args.listen,
        http_redirect_listen: args.http_redirect_listen,
        camera: args.camera,
        size: args.size,
        fps: args.fps,
        jpeg_quality: args.jpeg_quality,
        seed: args.seed,
    };
    let result = Config::load(args.config.as_deref(), &overrides)
        .map_err(mecam::service::StartError::from)
        .and_then(mecam::service::run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn decrypt(args: DecryptArgs) -> ExitCode {
    use mecam::decrypt::{Decrypted, decrypt_file};
    match decrypt_file(&args.recovery_key, &args.input, &args.output) {
        Ok(Decrypted::Complete { chunks }) => {
            println!("wrote {} ({chunks} parts)", args.output.display());
            ExitCode::SUCCESS
        }
        Ok(Decrypted::Incomplete { chunks }) => {
            println!(
                "wrote {} ({chunks} parts); the recording was cut off (power loss?), \
                 everything before the cut is there",
                args.output.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MECAM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
