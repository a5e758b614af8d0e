//! The indirect architecture of tix: clients publish purchase requests to the durable RabbitMQ
//! queue [`PURCHASE_QUEUE`]; a [`consumer`] — inside a node (`tix serve --amqp-url`, proposing to
//! its log directly) or in a `tix worker` process ([`worker`], committing through
//! `POST /api/v1/purchases/batch`) — takes them in batches, commits them, publishes each outcome
//! to the request's `reply_to` queue under its `correlation_id`, and only then acknowledges the
//! request.
//! [`requester`] is the client side, used by `tix bench`: it publishes with confirms, awaits
//! replies, and survives broker restarts by publishing every unanswered request again under
//! the same request id (the cluster's idempotency makes a repeat harmless).
//!
//! Nothing here decides a sale: a consumer is a stateless relay between the broker and the
//! replicated log, so any number of them can run, die or restart at any moment.

pub mod ack;
pub mod consumer;
pub mod protocol;
pub mod requester;
pub mod worker;

pub use consumer::{Committer, ConsumerConfig, ConsumerError};
pub use protocol::{PURCHASE_QUEUE, PurchaseMessage};
pub use requester::{Requester, RequesterConfig};
pub use worker::{WorkerConfig, WorkerError};
