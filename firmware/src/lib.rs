//! ME_CAM: a private security camera appliance service.
//!
//! One folder per stage of the data flow (see `docs/` and the design): `camera`
//! produces frames, `encode` compresses them, `live` shares the newest JPEG, `api`
//! serves it. `runtime` is the only user of `tokio_uring`; `service` wires it all up.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod camera;
pub mod config;
pub mod decrypt;
pub mod detect;
pub mod encode;
pub mod events;
pub mod live;
pub mod memory;
pub mod notify;
pub mod pipeline;
pub mod record;
pub mod runtime;
pub mod service;
pub mod status;
pub mod store;
pub mod vault;
