//! `tix assistant`: the booking assistant's engine offline. `eval` scores it on a labelled set
//! (by default the one committed with the engine, built into the binary: intent accuracy per
//! intent, exact slot match, the confusion matrix and every miss); `ask` shows what one message
//! is understood as against the same catalog, for writing templates and bug reports.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use tix_assistant::eval::{parse_cases, parse_catalog};

/// The evaluation set committed with the engine.
const EVAL_SET: &str = include_str!("../../assistant/eval/eval.jsonl");
/// The catalog and reference time of the evaluation set.
const EVAL_CATALOG: &str = include_str!("../../assistant/eval/catalog.json");

/// `tix assistant ...`.
#[derive(Debug, Subcommand)]
pub enum AssistantCommand {
    /// Scores the engine on a labelled set: accuracy per intent, slot match, confusion matrix.
    Eval(EvalArgs),
    /// Prints what one message is understood as (language, intent, slots) as JSON.
    Ask(AskArgs),
}

/// Options of `tix assistant eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The labelled set (JSON lines); default: the committed `crates/assistant/eval/eval.jsonl`.
    #[arg(long)]
    set: Option<PathBuf>,
    /// The catalog and reference time (JSON); default: `crates/assistant/eval/catalog.json`.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Exit non-zero unless intent accuracy is at least this (0..=1).
    #[arg(long, default_value_t = 0.0)]
    min_intent_accuracy: f64,
    /// Exit non-zero unless the exact slot match rate is at least this (0..=1).
    #[arg(long, default_value_t = 0.0)]
    min_slot_match: f64,
}

/// Options of `tix assistant ask`.
#[derive(Debug, Args)]
pub struct AskArgs {
    /// The message.
    text: String,
    /// The catalog and reference time (JSON); default: the evaluation catalog.
    #[arg(long)]
    catalog: Option<PathBuf>,
}

fn read_or(path: Option<&PathBuf>, default: &'static str) -> anyhow::Result<String> {
    match path {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())),
        None => Ok(default.to_owned()),
    }
}

/// Runs `tix assistant ...`.
pub fn run(command: AssistantCommand) -> anyhow::Result<()> {
    match command {
        AssistantCommand::Eval(args) => eval(args),
        AssistantCommand::Ask(args) => ask(args),
    }
}

fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let set_text = read_or(args.set.as_ref(), EVAL_SET)?;
    let catalog_text = read_or(args.catalog.as_ref(), EVAL_CATALOG)?;
    let cases = parse_cases(&set_text).context("the labelled set")?;
    let catalog = parse_catalog(&catalog_text).context("the catalog")?;
    let report = tix_assistant::eval::evaluate(&cases, &catalog.catalog, catalog.reference_time_ms);
    println!("{report}");
    anyhow::ensure!(
        report.intent_accuracy() >= args.min_intent_accuracy,
        "intent accuracy {:.3} is below {:.3}",
        report.intent_accuracy(),
        args.min_intent_accuracy
    );
    anyhow::ensure!(
        report.slot_match_rate() >= args.min_slot_match,
        "slot match {:.3} is below {:.3}",
        report.slot_match_rate(),
        args.min_slot_match
    );
    Ok(())
}

fn ask(args: AskArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.text.chars().count() <= tix_assistant::MESSAGE_CHARS_MAX,
        "the message is longer than {} characters",
        tix_assistant::MESSAGE_CHARS_MAX
    );
    let catalog_text = read_or(args.catalog.as_ref(), EVAL_CATALOG)?;
    let catalog = parse_catalog(&catalog_text).context("the catalog")?;
    let u = tix_assistant::understand(&args.text, &catalog.catalog, catalog.reference_time_ms);
    let out = serde_json::json!({
        "lang": u.lang.code(),
        "intent": u.intent.name(),
        "slots": u.slots,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
