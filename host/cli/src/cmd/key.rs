//! `gatehouse key generate --out DIR`: a vendor's signing key pair.

use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Write DIR/signing.key (private, mode 0600) and DIR/signing.pub (give this to gateways).
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(c: Command) -> anyhow::Result<()> {
    match c {
        Command::Generate { out } => {
            let (secret, public) = gatehouse_ota::generate_key_pair(&out)?;
            println!("private key: {} (keep it secret)", secret.display());
            println!(
                "public key:  {} (copy it into each gateway's trust folder)",
                public.display()
            );
            Ok(())
        }
    }
}
