//! `skiff certificate create-ca --out DIR`: a cluster CA that several servers share
//! (`skiff server --cluster-ca DIR`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use skiff_control_plane::pki::{ClusterCa, ServiceAccountKey, CA_CERT, CA_KEY};

#[derive(Subcommand, Debug)]
pub enum CertificateCommand {
    /// Make a cluster CA (ca.crt, ca.key, and the ServiceAccount token key) for the members of a multi-member cluster.
    CreateCa(CreateCaArgs),
}

#[derive(Args, Debug)]
pub struct CreateCaArgs {
    /// The directory to write ca.crt and ca.key (0600) into; created if missing.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(command: CertificateCommand) -> anyhow::Result<()> {
    match command {
        CertificateCommand::CreateCa(args) => create_ca(&args),
    }
}

fn create_ca(args: &CreateCaArgs) -> anyhow::Result<()> {
    if args.out.join(CA_KEY).exists() {
        anyhow::bail!(
            "{} already holds a CA key: refusing to replace it",
            args.out.display()
        );
    }
    ClusterCa::create()?.write(&args.out)?;
    // The members share the ServiceAccount token key too, so each accepts the others' tokens.
    ServiceAccountKey::create()?.write(&args.out)?;
    println!(
        "wrote {}, {} and {}; start every member with --cluster-ca {}",
        args.out.join(CA_CERT).display(),
        args.out.join(CA_KEY).display(),
        args.out
            .join(skiff_control_plane::pki::SERVICE_ACCOUNT_KEY)
            .display(),
        args.out.display()
    );
    Ok(())
}
