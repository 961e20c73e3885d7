//! ME_CAM benchmarks. Three binaries, `jpeg`, `fanout` and `record`, report speed and memory of
//! the service on this host, each result also as a ratio to a reference workload
//! measured in the same run: the machine is shared and noisy, and a ratio carries over
//! to other hosts (and to the Pi Zero 2 W) far better than a bare time does.
//! See `docs/performance.md` for what each number means and the results.

pub mod args;
pub mod cputime;
pub mod fanout;
pub mod host;
pub mod proc_status;
pub mod reference;
pub mod scene;
pub mod stats;
pub mod table;
