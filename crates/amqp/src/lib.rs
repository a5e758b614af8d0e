//! The indirect architecture of tix: clients publish purchase requests to the durable RabbitMQ
//! queue [`PURCHASE_QUEUE`]; `tix worker` processes ([`worker`]) consume them, commit them to the
//! cluster in batches through `POST /api/v1/purchases/batch`, publish each outcome to the
//! request's `reply_to` queue under its `correlation_id`, and only then acknowledge the request.
//! [`requester`] is the client side, used by `tix bench`: it publishes with confirms, awaits
//! replies, and survives broker restarts by publishing every unanswered request again under
//! the same request id (the cluster's idempotency makes a repeat harmless).
//!
//! Nothing here decides a sale: a worker is a stateless relay between the broker and the
//! replicated log, so any number of them can run, die or restart at any moment.

pub mod ack;
pub mod protocol;
pub mod requester;
pub mod worker;

pub use protocol::{PURCHASE_QUEUE, PurchaseMessage};
pub use requester::{Requester, RequesterConfig};
pub use worker::{WorkerConfig, WorkerError};
