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
