//! `wabridge`: parse the command line, then hand over to `app`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = wabridge::cli::Cli::parse();
    wabridge::app::run(cli).await
}
