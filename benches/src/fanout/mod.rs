//! The pieces of the `fanout` bench: launching the real server, its HTTPS clients,
//! reading the MJPEG stream and the capture clock in it, and `/proc` sampling.

pub mod client;
pub mod clock;
pub mod multipart;
pub mod procfs;
pub mod server;
pub mod viewer;
