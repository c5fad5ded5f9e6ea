//! Event plumbing against real RabbitMQ and PostgreSQL (and the in-process adapter, held to the
//! same contract).

mod contract;
mod in_process;
mod inbox;
mod outbox;
mod rabbitmq;
mod reconnect;
mod support;
