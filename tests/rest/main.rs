//! The REST API over a real socket, with a real HTTP client, against the
//! real `tributary` binary: every endpoint with its status codes and error
//! bodies, one module per resource.
//!
//! Most tests share one worker (`common::rest::shared`); each keeps to its
//! own connector names, topics and files, prefixed with the same word, so
//! they run side by side. Tests that configure the worker itself
//! (authentication, TLS, a real broker's topics, a restart) or hold up its
//! other changes (a sink's offsets) start their own.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod connectors;
mod consumer_groups;
mod health;
mod kafka_stores;
mod lifecycle;
mod limits;
mod metrics;
mod offsets;
mod placeholders;
mod plugins;
mod reach;
mod routes;
mod tasks;
