//! Notifications: event updates to the owner's other systems — webhooks (signed JSON
//! POSTs) and MQTT with Home Assistant discovery. Never on the pipeline's path: each
//! notifier has its own task and queue, and drops what it cannot deliver in time.

pub mod mqtt;
pub mod webhook;
