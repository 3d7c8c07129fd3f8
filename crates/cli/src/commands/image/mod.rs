//! `skiff image`: push to registries, and list, pull, remove and import the images on a node.

mod import;
mod node_images;
mod push;

use clap::Subcommand;

use crate::cli::ClientOpts;
pub use import::ImportArgs;
pub use node_images::{NodeImageArgs, NodeImagesArgs};
pub use push::PushArgs;

/// Image commands.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Push a `.wasm` module or component as a CNCF Wasm OCI artifact and print its digest.
    Push(PushArgs),
    /// List the images on a node (as `crictl images`).
    #[command(alias = "list")]
    Ls(NodeImagesArgs),
    /// Pull an image onto a node ahead of the pods that use it.
    Pull(NodeImageArgs),
    /// Remove an image from a node; refused while a container uses it.
    #[command(alias = "remove")]
    Rm(NodeImageArgs),
    /// Import the images of an OCI image layout (a directory or a tar of one) or a `docker
    /// save` tarball onto a node, under the names they are tagged with.
    Import(ImportArgs),
}

/// Runs an image command.
pub async fn run(command: ImageCommand, opts: &ClientOpts) -> anyhow::Result<()> {
    match command {
        ImageCommand::Push(args) => push::push(args).await,
        ImageCommand::Ls(args) => node_images::list(args, opts).await,
        ImageCommand::Pull(args) => node_images::pull(args, opts).await,
        ImageCommand::Rm(args) => node_images::remove(args, opts).await,
        ImageCommand::Import(args) => import::import(args, opts).await,
    }
}
