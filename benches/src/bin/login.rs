//! `login`: the cost of one login with the device's Argon2id parameters
//! (`Argon2Params::RECOMMENDED`: m = 19 MiB, t = 2, p = 1).
//!
//! A successful login runs Argon2id twice: `PasswordHasher::verify` on the stored PHC
//! string, then `VaultRecord::unlock`, which derives the key that unwraps the recording
//! key with Argon2id too. A failed login runs it once: `verify` of a wrong password, or
//! `dummy_verify` for an unknown user (the constant-cost path). The bench times the three
//! paths interleaved on one thread (thread CPU time and wall time), with the reference
//! after each round: ChaCha20-Poly1305 (ring) of 1 MiB in TLS records, as in `record`.
//!
//! Besides, for the Pi Zero 2 W projection (docs/performance.md, "Login cost"):
//! - peak memory of each path: the process's VmHWM, reset before each one through
//!   `/proc/self/clear_refs`, minus VmRSS before it;
//! - Argon2's cost per 1 KiB block when its memory is cache-resident: the extra time of
//!   passes 2–4 over 32 KiB (t = 1 against t = 4), the method of the published Cortex-A53
//!   figures the projection uses; and per block at 608 KiB × 64 passes, the same number
//!   of blocks as a login's Argon2id but in this host's L2, against the real 19 MiB run.

use std::fs;
use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mecam::auth::{Password, PasswordHasher};
use mecam::memory::release_free;
use mecam::vault::{Argon2Params, VaultRecord};
use mecam_benches::args::{Args, OptSpec};
use mecam_benches::cputime::thread_cpu;
use mecam_benches::host::Host;
use mecam_benches::proc_status::status_kib;
use mecam_benches::reference::Sealer;
use mecam_benches::stats::{Summary, round};
use mecam_benches::table;
use serde_json::json;

const ABOUT: &str = "Cost of one login (Argon2id, the device's parameters): time, peak memory,\n\
     Argon2 cost per block, with a same-run reference.\n\
     Run: cargo run --release -p mecam-benches --bin login";
const SPEC: &[OptSpec] = &[
    (
        "rounds",
        "N",
        "measured rounds of (success, wrong password, unknown user) (default 20)",
    ),
    (
        "block-secs",
        "S",
        "measuring time per small-memory Argon2 setting (default 1)",
    ),
];

const PARAMS: Argon2Params = Argon2Params::RECOMMENDED;
const USER: &str = "owner";
const PASSWORD: &str = "correct horse battery staple";
const WRONG: &str = "correct horse battery stapler";
/// Successful logins after which the resident memory they left behind is measured.
const RETAIN_LOGINS: usize = 10;
/// Bytes the reference seals after each round.
const REFERENCE_BYTES: usize = 1 << 20;
/// Memory of the small-memory runs whose pass-to-pass difference gives the
/// cache-resident cost per block (the published A53 series used 8–32 KiB).
const SMALL_KIB: u32 = 32;
/// The same block count as one login Argon2id (19456 × 2 = 608 × 64), in 608 KiB.
const CACHED_SAME_WORK: Argon2Params = Argon2Params {
    m_cost_kib: 608,
    t_cost: 64,
    p_cost: 1,
};

/// The published Cortex-A53 figure the projection scales: 2.30 µs per block, the
/// marginal cost of Argon2 passes 2–4 at 8, 16 and 32 KiB (2.300, 2.293, 2.319 µs) on
/// an Allwinner H6 (Cortex-A53, aarch64, 1.6–1.8 GHz) in turtlecoin/turtlecoin issue
/// #716 (2019, PHC reference C implementation).
const A53_US_PER_BLOCK_PUBLISHED: f64 = 2.30;
/// The clock of that A53: the poster gave 1.6 GHz, the H6's maximum is 1.8 GHz.
const A53_PUBLISHED_GHZ: (f64, f64) = (1.6, 1.8);
/// The Pi Zero 2 W's clock and assumed single-core DRAM bandwidth (LPDDR2).
const PI_GHZ: f64 = 1.0;
const PI_DRAM_GB_S: (f64, f64) = (1.5, 2.0);

fn main() -> Result<()> {
    let args = Args::from_env(ABOUT, SPEC)?;
    let rounds: usize = args.get("rounds", 20)?;
    let block_budget = Duration::from_secs_f64(args.get("block-secs", 1.0)?);
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let host = Host::probe();
    eprintln!("host: {}", host.describe());

    eprintln!("login: setting up an account and a vault ({PARAMS:?})");
    let hasher = PasswordHasher::new(PARAMS).context("the recommended parameters")?;
    let password = Password::new(PASSWORD);
    let wrong = Password::new(WRONG);
    let stored = hasher.hash(&password).context("hashing the password")?;
    let (record, _recovery, _vault) =
        VaultRecord::create(USER, PASSWORD, PARAMS).context("creating the vault")?;

    let login = || -> Result<()> {
        if !hasher.verify(&password, &stored)? {
            bail!("the right password was refused");
        }
        black_box(record.unlock(USER, PASSWORD)?);
        Ok(())
    };
    let wrong_password = || -> Result<()> {
        if hasher.verify(&wrong, &stored)? {
            bail!("a wrong password was accepted");
        }
        Ok(())
    };
    let unknown_user = || -> Result<()> {
        black_box(hasher.dummy_verify(&password));
        Ok(())
    };

    // Memory first, while the allocator holds none of Argon2's memory yet.
    eprintln!("login: peak memory of each path");
    let mut memory = Memory {
        login: peak_extra_kib(&login)?,
        wrong_password: peak_extra_kib(&wrong_password)?,
        unknown_user: peak_extra_kib(&unknown_user)?,
        retained: 0,
    };
    // What the allocator keeps after a series of logins (nothing is trimmed here).
    release_free();
    let before = status_kib("VmRSS")?;
    for _ in 0..RETAIN_LOGINS {
        login()?;
    }
    memory.retained = status_kib("VmRSS")?.saturating_sub(before);

    eprintln!("login: {rounds} rounds of (success, wrong password, unknown user, reference)");
    let mut sealer = Sealer::new();
    let mut buf = vec![0x5A; REFERENCE_BYTES];
    let mut timing = Timing::default();
    for round in 0..=rounds {
        // Round 0 warms up and is not counted.
        let keep = round > 0;
        for (path, samples) in [
            (&login as &dyn Fn() -> Result<()>, &mut timing.login),
            (&wrong_password, &mut timing.wrong_password),
            (&unknown_user, &mut timing.unknown_user),
        ] {
            let (cpu, wall) = measure(path)?;
            if keep {
                samples.0.push(cpu);
                samples.1.push(wall);
            }
        }
        let t = Instant::now();
        sealer.seal_records(black_box(&mut buf));
        if keep {
            timing
                .reference_ns_per_byte
                .push(t.elapsed().as_secs_f64() * 1e9 / REFERENCE_BYTES as f64);
        }
    }

    eprintln!("login: Argon2 cost per block");
    let blocks = Blocks {
        small_t1: per_run_us(SMALL_KIB, 1, block_budget)?,
        small_t4: per_run_us(SMALL_KIB, 4, block_budget)?,
        same_work_cached_ms: per_run_us(
            CACHED_SAME_WORK.m_cost_kib,
            CACHED_SAME_WORK.t_cost,
            block_budget,
        )? / 1e3,
    };

    let report = Report {
        memory,
        login_cpu: summary(&timing.login.0),
        login_wall: summary(&timing.login.1),
        wrong_cpu: summary(&timing.wrong_password.0),
        wrong_wall: summary(&timing.wrong_password.1),
        unknown_cpu: summary(&timing.unknown_user.0),
        unknown_wall: summary(&timing.unknown_user.1),
        reference_ns_per_byte: summary(&timing.reference_ns_per_byte),
        blocks,
    };
    report.print(&host, rounds);
    Ok(())
}

#[derive(Default)]
struct Timing {
    /// (CPU ms, wall ms) per run.
    login: (Vec<f64>, Vec<f64>),
    wrong_password: (Vec<f64>, Vec<f64>),
    unknown_user: (Vec<f64>, Vec<f64>),
    reference_ns_per_byte: Vec<f64>,
}

/// Peak memory above the resident set before each path, KiB, and what
/// `RETAIN_LOGINS` logins leave resident.
struct Memory {
    login: u64,
    wrong_password: u64,
    unknown_user: u64,
    retained: u64,
}

/// Median µs of one Argon2id run, at small memory and the cache-resident login size.
struct Blocks {
    small_t1: f64,
    small_t4: f64,
    same_work_cached_ms: f64,
}

struct Report {
    memory: Memory,
    login_cpu: Summary,
    login_wall: Summary,
    wrong_cpu: Summary,
    wrong_wall: Summary,
    unknown_cpu: Summary,
    unknown_wall: Summary,
    reference_ns_per_byte: Summary,
    blocks: Blocks,
}

/// Blocks (1 KiB each) one Argon2id run processes.
fn block_count(p: Argon2Params) -> f64 {
    f64::from(p.m_cost_kib) * f64::from(p.t_cost)
}

fn summary(samples: &[f64]) -> Summary {
    Summary::of(samples).expect("at least one round")
}

/// (thread CPU ms, wall ms) of one call.
fn measure(path: &dyn Fn() -> Result<()>) -> Result<(f64, f64)> {
    let (wall, cpu) = (Instant::now(), thread_cpu());
    path()?;
    Ok((
        (thread_cpu() - cpu).as_secs_f64() * 1e3,
        wall.elapsed().as_secs_f64() * 1e3,
    ))
}

/// The peak resident memory `path` adds, KiB: VmHWM after it, minus VmRSS before it,
/// with the peak reset first (`echo 5 > /proc/self/clear_refs`, Linux 4.0+) and the
/// allocator's free memory handed back, so that memory a previous run left resident
/// does not hide this one's.
fn peak_extra_kib(path: &dyn Fn() -> Result<()>) -> Result<u64> {
    release_free();
    let before = status_kib("VmRSS")?;
    fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")?;
    path()?;
    Ok(status_kib("VmHWM")?.saturating_sub(before))
}

/// Median µs of one Argon2id run (the unknown-user path: Argon2 and nothing else) with
/// `m_kib` and `t`, over about `budget` and at least 5 runs.
fn per_run_us(m_kib: u32, t: u32, budget: Duration) -> Result<f64> {
    let params = Argon2Params {
        m_cost_kib: m_kib,
        t_cost: t,
        p_cost: 1,
    };
    let hasher = PasswordHasher::new(params).with_context(|| format!("{params:?}"))?;
    let password = Password::new(PASSWORD);
    hasher.dummy_verify(&password);
    let mut samples = Vec::new();
    let end = Instant::now() + budget;
    while Instant::now() < end || samples.len() < 5 {
        let cpu = thread_cpu();
        black_box(hasher.dummy_verify(black_box(&password)));
        samples.push((thread_cpu() - cpu).as_secs_f64() * 1e6);
    }
    Ok(summary(&samples).median)
}

impl Report {
    /// Cache-resident µs per block: passes 2–4 at `SMALL_KIB`, as in the published series.
    fn host_us_per_block_cached(&self) -> f64 {
        (self.blocks.small_t4 - self.blocks.small_t1) / (3.0 * f64::from(SMALL_KIB))
    }
    /// µs per block of one login Argon2id (19 MiB, past this host's L2).
    fn host_us_per_block_login(&self) -> f64 {
        self.unknown_cpu.median * 1e3 / block_count(PARAMS)
    }
    /// µs per block of the same block count in 608 KiB (L2-resident here).
    fn host_us_per_block_same_work_cached(&self) -> f64 {
        self.blocks.same_work_cached_ms * 1e3 / block_count(CACHED_SAME_WORK)
    }
    fn reference_mib_ms(&self) -> f64 {
        self.reference_ns_per_byte.median * REFERENCE_BYTES as f64 / 1e6
    }

    /// Projected ms of one Argon2id run with `PARAMS` on the Pi Zero 2 W: (low, high).
    ///
    /// Compute: the published A53 cost per cache-resident block, scaled from its clock
    /// to the Pi's. Memory: the DRAM traffic the run cannot keep in the A53's 512 KB L2
    /// (see `dram_bytes_per_run`) at the assumed bandwidth, added rather than
    /// overlapped, since an in-order core stalls on the loads it needs next.
    fn pi_argon2_ms(&self) -> (f64, f64) {
        let blocks = block_count(PARAMS);
        let compute = |ghz: f64| blocks * A53_US_PER_BLOCK_PUBLISHED * ghz / PI_GHZ / 1e3;
        let memory = |gb_s: f64| dram_bytes_per_run() / (gb_s * 1e9) * 1e3;
        (
            compute(A53_PUBLISHED_GHZ.0) + memory(PI_DRAM_GB_S.1),
            compute(A53_PUBLISHED_GHZ.1) + memory(PI_DRAM_GB_S.0),
        )
    }

    fn print(&self, host: &Host, rounds: usize) {
        let ms = |s: &Summary| format!("{:.1}", s.median);
        let p95 = |s: &Summary| format!("{:.1}", s.p95);
        let reference = self.reference_mib_ms();
        let row = |name: &str, runs: u32, cpu: &Summary, wall: &Summary, kib: u64| {
            vec![
                name.to_owned(),
                runs.to_string(),
                ms(cpu),
                p95(cpu),
                ms(wall),
                format!("{:.1}", kib as f64 / 1024.0),
                format!("{:.0}", cpu.median / reference),
            ]
        };
        let rows = vec![
            row(
                "success",
                2,
                &self.login_cpu,
                &self.login_wall,
                self.memory.login,
            ),
            row(
                "wrong password",
                1,
                &self.wrong_cpu,
                &self.wrong_wall,
                self.memory.wrong_password,
            ),
            row(
                "unknown user",
                1,
                &self.unknown_cpu,
                &self.unknown_wall,
                self.memory.unknown_user,
            ),
        ];
        println!("host: {}", host.describe());
        println!(
            "Login cost, Argon2id m = {} KiB, t = {}, p = {}; {rounds} rounds, one thread\n",
            PARAMS.m_cost_kib, PARAMS.t_cost, PARAMS.p_cost
        );
        print!(
            "{}",
            table::render(
                &[
                    "login",
                    "argon2 runs",
                    "cpu ms med",
                    "cpu ms p95",
                    "wall ms med",
                    "peak MiB",
                    "÷ ref",
                ],
                &rows,
            )
        );
        let (lo, hi) = self.pi_argon2_ms();
        println!(
            "\nref = ChaCha20-Poly1305 (ring) of 1 MiB in 16 KiB TLS records: {:.3} ms median \
             ({:.3} ns/B). ÷ ref = cpu median ÷ ref.\n\
             peak MiB = VmHWM during the path minus VmRSS before it (m = {:.1} MiB). \
             {RETAIN_LOGINS} successful logins in a row left {:.1} MiB more resident \
             (freed, kept by the allocator).\n\n\
             Argon2 per 1 KiB block on this host (cpu):\n  \
             cache-resident, passes 2-4 at {SMALL_KIB} KiB: {:.3} µs\n  \
             {} blocks in {} KiB (L2 here):      {:.3} µs\n  \
             {} blocks in {} KiB (one login run):  {:.3} µs\n\n\
             Pi Zero 2 W projection (see docs/performance.md): {:.0} blocks × {:.2} µs \
             (published A53, at {:.1}-{:.1} GHz, scaled to {PI_GHZ} GHz) + {:.0} MB of DRAM \
             traffic at {:.1}-{:.1} GB/s\n  \
             one Argon2id run: {lo:.0}-{hi:.0} ms; failed login {lo:.0}-{hi:.0} ms; \
             successful login {:.0}-{:.0} ms\n  \
             A53 at {PI_GHZ} GHz ÷ this host, cache-resident per block: {:.1}-{:.1}\n",
            reference,
            self.reference_ns_per_byte.median,
            f64::from(PARAMS.m_cost_kib) / 1024.0,
            self.memory.retained as f64 / 1024.0,
            self.host_us_per_block_cached(),
            block_count(CACHED_SAME_WORK),
            CACHED_SAME_WORK.m_cost_kib,
            self.host_us_per_block_same_work_cached(),
            block_count(PARAMS),
            PARAMS.m_cost_kib,
            self.host_us_per_block_login(),
            block_count(PARAMS),
            A53_US_PER_BLOCK_PUBLISHED,
            A53_PUBLISHED_GHZ.0,
            A53_PUBLISHED_GHZ.1,
            dram_bytes_per_run() / 1e6,
            PI_DRAM_GB_S.0,
            PI_DRAM_GB_S.1,
            2.0 * lo,
            2.0 * hi,
            A53_US_PER_BLOCK_PUBLISHED * A53_PUBLISHED_GHZ.0 / self.host_us_per_block_cached(),
            A53_US_PER_BLOCK_PUBLISHED * A53_PUBLISHED_GHZ.1 / self.host_us_per_block_cached(),
        );
        let json = json!({
            "bench": "login",
            "argv": std::env::args().collect::<Vec<_>>(),
            "host": host.to_json(),
            "params": {"m_cost_kib": PARAMS.m_cost_kib, "t_cost": PARAMS.t_cost, "p_cost": PARAMS.p_cost},
            "rounds": rounds,
            "login_success": {"argon2_runs": 2, "cpu_ms": self.login_cpu.to_json(), "wall_ms": self.login_wall.to_json(), "peak_extra_kib": self.memory.login},
            "login_wrong_password": {"argon2_runs": 1, "cpu_ms": self.wrong_cpu.to_json(), "wall_ms": self.wrong_wall.to_json(), "peak_extra_kib": self.memory.wrong_password},
            "login_unknown_user": {"argon2_runs": 1, "cpu_ms": self.unknown_cpu.to_json(), "wall_ms": self.unknown_wall.to_json(), "peak_extra_kib": self.memory.unknown_user},
            "retained_kib_after_logins": {"logins": RETAIN_LOGINS, "kib": self.memory.retained},
            "reference_ns_per_byte": self.reference_ns_per_byte.to_json(),
            "ratio_success_to_reference_mib": round(self.login_cpu.median / reference, 1),
            "ratio_failed_to_reference_mib": round(self.unknown_cpu.median / reference, 1),
            "argon2_us_per_block": {
                "cached_passes_2_4_small": round(self.host_us_per_block_cached(), 4),
                "same_work_608_kib": round(self.host_us_per_block_same_work_cached(), 4),
                "login_19_mib": round(self.host_us_per_block_login(), 4),
            },
            "pi_zero_2w_projection_ms": {
                "argon2_run": [round(lo, 0), round(hi, 0)],
                "login_success": [round(2.0 * lo, 0), round(2.0 * hi, 0)],
                "login_failed": [round(lo, 0), round(hi, 0)],
            },
        });
        println!("{json}");
    }
}

/// DRAM bytes one Argon2id run with `PARAMS` moves on the A53 (512 KB L2, far below
/// the 19 MiB working set), counted per 1 KiB block:
/// - zeroing the freshly allocated memory: one write per block;
/// - pass 1: reading the reference block (a miss unless it is among the last 512
///   blocks; Argon2's index mapping favours recent blocks, so that is about
///   sqrt(512 / 19456) = 16 % of the time) and writing the new block;
/// - pass 2: the same, plus reading the old block it is XORed into (sequential).
fn dram_bytes_per_run() -> f64 {
    let m = f64::from(PARAMS.m_cost_kib);
    let ref_miss = 1.0 - (512.0 / m).sqrt();
    let per_pass_1 = ref_miss + 1.0;
    let per_later_pass = ref_miss + 2.0;
    let kib = m * (1.0 + per_pass_1 + per_later_pass * f64::from(PARAMS.t_cost - 1));
    kib * 1024.0
}
