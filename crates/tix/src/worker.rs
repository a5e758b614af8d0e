//! `tix worker`: the command-line face of [`tix_amqp::worker`]. Parses flags into a
//! [`WorkerConfig`], runs until SIGINT/SIGTERM, then lets in-flight batches finish.

use clap::Args;
use tix_amqp::WorkerConfig;

/// Options of `tix worker`.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The broker.
    #[arg(
        long,
        env = "TIX_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    /// A tix node (or nginx) to send batches to; repeat for several. The worker then follows
    /// the leader each node names.
    #[arg(
        long = "api",
        env = "TIX_API_URLS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080"
    )]
    pub api_urls: Vec<String>,
    /// An account allowed to sell for the events (their organizer, or admin).
    #[arg(long, env = "TIX_WORKER_USERNAME", default_value = "admin")]
    pub username: String,
    /// Its password.
    #[arg(
        long,
        env = "TIX_WORKER_PASSWORD",
        hide_env_values = true,
        default_value = ""
    )]
    pub password: String,
    /// The request queue.
    #[arg(long, default_value = tix_amqp::PURCHASE_QUEUE)]
    pub queue: String,
    /// Unacknowledged requests the broker may send ahead.
    #[arg(long, default_value_t = WorkerConfig::default().prefetch)]
    pub prefetch: u16,
    /// The most requests per batch (1..=512).
    #[arg(long, default_value_t = WorkerConfig::default().batch_max)]
    pub batch_max: usize,
    /// Wait this long for more requests after the first of a batch (0: take what is there).
    #[arg(long, default_value_t = 0)]
    pub batch_wait_ms: u64,
    /// Batches being committed at once.
    #[arg(long = "batches-in-flight", default_value_t = WorkerConfig::default().batches_in_flight_max)]
    pub batches_in_flight_max: usize,
    /// How long a batch is retried while the cluster cannot answer, before it goes back to
    /// the broker.
    #[arg(long, default_value_t = 30_000)]
    pub api_retry_ms: u64,
    /// Reply at once without touching the cluster (measures the broker path's ceiling).
    #[arg(long)]
    pub echo: bool,
    /// Wait for the broker to confirm each reply before acknowledging its request (off: a
    /// lost reply is answered again from the record when the client publishes again).
    #[arg(long)]
    pub reply_confirms: bool,
}

/// Runs the worker until a signal.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    if !args.echo && args.password.is_empty() {
        anyhow::bail!("set the worker account's password with TIX_WORKER_PASSWORD (or --password)");
    }
    let config = WorkerConfig {
        amqp_url: args.amqp_url,
        api_urls: args.api_urls,
        username: args.username,
        password: args.password,
        queue: args.queue,
        prefetch: args.prefetch,
        batch_max: args.batch_max,
        batch_wait_ms: args.batch_wait_ms,
        batches_in_flight_max: args.batches_in_flight_max,
        api_retry_ms: args.api_retry_ms,
        echo: args.echo,
        reply_confirms: args.reply_confirms,
        ..WorkerConfig::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        crate::serve::shutdown_signal().await;
        tracing::info!("stopping: finishing in-flight batches");
        let _ = stop.send(true);
    });
    tix_amqp::worker::run(config, stopped).await?;
    Ok(())
}
