//! The facts that make a result reproducible: when, on what CPU, with which compiler,
//! and how busy the machine already was.

use std::time::SystemTime;

use serde_json::{Value, json};

pub struct Host {
    pub date_utc: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub kernel: String,
    pub rustc: &'static str,
    /// 1-minute load average when the bench started: above the core count, other jobs
    /// were competing for the CPU and absolute times mean little (ratios still hold).
    pub load_1m: f64,
}

impl Host {
    pub fn probe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                let (key, value) = l.split_once(':')?;
                // x86 says "model name"; many arm64 kernels only give "CPU part".
                matches!(key.trim(), "model name" | "Model" | "Hardware")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        let load_1m = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(f64::NAN);
        Self {
            date_utc: mecam::camera::synthetic::utc_clock(SystemTime::now()),
            cpu_model,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
            rustc: env!("MECAM_BENCH_RUSTC"),
            load_1m,
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} | {} ({} CPUs) | Linux {} | {} | load {:.2}",
            self.date_utc, self.cpu_model, self.cpus, self.kernel, self.rustc, self.load_1m
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "date_utc": self.date_utc,
            "cpu_model": self.cpu_model,
            "cpus": self.cpus,
            "kernel": self.kernel,
            "rustc": self.rustc,
            "load_1m": self.load_1m,
        })
    }
}
