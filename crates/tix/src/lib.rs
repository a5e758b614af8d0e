//! The `tix` library: [`app`], the one way to start a node — its settings ([`app::Config`]),
//! startup ([`app::App::build`]) and serving until shutdown ([`app::App::run_until`]). The
//! `tix` binary (`main.rs`) turns `tix serve`'s flags into a `Config` and runs an `App` until
//! SIGINT/SIGTERM; tests start nodes in-process the same way. [`intake`] is the node's RabbitMQ
//! intake (`tix serve --amqp-url`).

pub mod app;
pub mod intake;
