//! `--dry-run=server|none` of the writing commands, as kubectl spells it.

use skiff_client::Client;

/// Whether a command's writes are only checked by the server.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DryRun {
    /// Write for real.
    #[default]
    None,
    /// Send every write with `dryRun=All`: admission and validation answer, nothing is stored.
    Server,
}

impl DryRun {
    /// `client`, in dry-run mode when asked.
    pub fn client(self, client: Client) -> Client {
        match self {
            DryRun::None => client,
            DryRun::Server => client.dry_run(),
        }
    }

    /// What kubectl appends to each line it prints: ` (server dry run)`.
    pub fn suffix(self) -> &'static str {
        match self {
            DryRun::None => "",
            DryRun::Server => " (server dry run)",
        }
    }
}
