//! `kubectl-trunkline`: the kubectl plugin binary (kubectl finds it on the
//! PATH and runs it for `kubectl trunkline ...`). Parses the flags and
//! calls the library.

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = kubectl_trunkline::Cli::parse();
    let out = kubectl_trunkline::run(cli).await?;
    print!("{out}");
    Ok(())
}
