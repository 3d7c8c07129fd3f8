//! `skiff token create|list`: join tokens for agents.

use anyhow::Context;
use clap::{Args, Subcommand};
use skiff_api::join_token::{self, JoinToken};
use skiff_api::k8s_openapi::api::core::v1::Secret;
use skiff_api::k8s_openapi::jiff::{SignedDuration, Timestamp};
use skiff_client::{Client, ListParams};

use crate::cli::ClientOpts;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a join token and print it.
    Create(TokenCreateArgs),
    /// List join tokens (their ids, never their secrets).
    List,
}

#[derive(Args, Debug)]
pub struct TokenCreateArgs {
    /// How long the token is valid (e.g. 24h, 90m); 0 for ever.
    #[arg(long, default_value = "24h")]
    pub ttl: String,
    /// A note stored with the token.
    #[arg(long, default_value = "")]
    pub description: String,
}

pub async fn run(command: TokenCommand, opts: &ClientOpts) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(args) => create(args, opts).await,
        TokenCommand::List => list(opts).await,
    }
}

/// Stores a new random join token valid for `ttl` (forever when zero) and returns it.
pub async fn create_token(
    client: &Client,
    ttl: SignedDuration,
    description: &str,
) -> anyhow::Result<JoinToken> {
    let token = JoinToken::from_random(rand::random());
    let expiration = if ttl.is_zero() {
        None
    } else {
        Some(
            Timestamp::now()
                .checked_add(ttl)
                .context("--ttl is too long")?,
        )
    };
    client
        .create_join_token(&token, expiration, description)
        .await
        .context("storing the join token")?;
    Ok(token)
}

async fn create(args: TokenCreateArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let ttl: SignedDuration = args.ttl.parse().with_context(|| {
        format!(
            "--ttl {:?}: expected a duration such as 24h or 90m, or 0",
            args.ttl
        )
    })?;
    let client = super::client(opts)?;
    let token = create_token(&client, ttl, &args.description).await?;
    match client.cluster_ca().await? {
        Some(ca) => println!(
            "{}",
            join_token::with_ca_hash(&token, &skiff_control_plane::pki::ca_hash(&ca))
        ),
        None => println!("{token}"),
    }
    Ok(())
}

async fn list(opts: &ClientOpts) -> anyhow::Result<()> {
    let client = super::client(opts)?;
    let (secrets, _) = client
        .api::<Secret>(Some(join_token::NAMESPACE))
        .list(&ListParams::default())
        .await?;
    println!("{:<8} {:<22} DESCRIPTION", "ID", "EXPIRES");
    for secret in secrets
        .iter()
        .filter(|s| s.type_.as_deref() == Some(join_token::SECRET_TYPE))
    {
        let field = |name: &str| join_token::data_field(secret, name).unwrap_or_default();
        let expires = Some(field("expiration"))
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "<never>".into());
        println!(
            "{:<8} {:<22} {}",
            field("token-id"),
            expires,
            field("description")
        );
    }
    Ok(())
}
