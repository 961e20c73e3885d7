//! Brute-force throttling for every way a password or token is tried (login, HTTP
//! Basic on the stream URLs, TOTP).
//!
//! Failures are counted twice: per source (so one host cannot try many accounts) and
//! per account name (so many hosts cannot share the work against one account). Account
//! names are tracked whether or not the account exists, so throttling does not reveal
//! which usernames are real. After [`LockoutPolicy::free_attempts`] failures each further
//! failure locks the key for a delay that starts at [`LockoutPolicy::base_delay`] and
//! doubles up to [`LockoutPolicy::max_delay`]; a success clears the source and account.
//!
//! # Memory bound
//!
//! Each table holds at most [`LockoutPolicy::max_entries`] keys; inserting into a full
//! table evicts the key whose last failure is oldest, and keys idle for
//! [`LockoutPolicy::forget_after`] are dropped. An attacker spraying source addresses
//! therefore pushes out its own old entries, not memory. The price: a host that can
//! fail from more than `max_entries` distinct sources (or account names) between two
//! guesses can push its own locked entry out; on a LAN that takes thousands of
//! addresses, and every guess still costs it a full Argon2id on the device.
//!
//! IPv6 sources are grouped by /64 — one home or one host gets a /64, and counting
//! single addresses would let it rotate through 2^64 of them.
//!
//! Time is passed in as [`Instant`], so tests run without sleeping.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Throttling parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures allowed before any delay (typos happen).
    pub free_attempts: u32,
    /// Delay after the first failure beyond the free ones.
    pub base_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// A key with no failure for this long is forgotten.
    pub forget_after: Duration,
    /// Keys per table (sources and accounts each).
    pub max_entries: usize,
}

impl Default for LockoutPolicy {
    /// 5 free attempts, then 1 s doubling to 15 min; forgotten after 24 h; 4096 keys
    /// per table (a few hundred KiB at most).
    ///
    /// With these, a single source gets about 100 guesses a day once at the cap — and
    /// each costs an Argon2id on the device, which bounds parallel sources too.
    fn default() -> Self {
        Self {
            free_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(24 * 60 * 60),
            max_entries: 4096,
        }
    }
}

/// The caller must wait this long before trying again (`Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed attempts; retry after {} s", self.secs())]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, rounded up, for the `Retry-After` header (never 0).
    pub fn secs(&self) -> u64 {
        let secs = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        secs.max(1)
    }
}

/// The throttling key of a source: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKey {
    V4([u8; 4]),
    V6Prefix64([u8; 8]),
}

impl From<IpAddr> for SourceKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.octets()),
                None => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    Self::V6Prefix64(prefix)
                }
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Instant,
    /// Position in the table's age index: (last failure, insertion sequence).
    order: (Instant, u64),
}

/// A bounded map from key to failure state, with an index by last failure for O(log n)
/// eviction of the oldest and expiry of idle keys.
#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Entry>,
    by_age: BTreeMap<(Instant, u64), K>,
    seq: u64,
}

impl<K: Clone + Eq + Hash> Table<K> {
    fn new() -> Self {
        Self {
            entries: HashMap::new(),
            by_age: BTreeMap::new(),
            seq: 0,
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn locked_until(&self, key: &K) -> Option<Instant> {
        self.entries.get(key).map(|e| e.locked_until)
    }

    fn remove(&mut self, key: &K) {
        if let Some(entry) = self.entries.remove(key) {
            self.by_age.remove(&entry.order);
        }
    }

    /// Drops keys whose last failure is older than `forget_after`.
    fn expire(&mut self, now: Instant, forget_after: Duration) {
        while let Some((&(last, seq), _)) = self.by_age.first_key_value() {
            if now.saturating_duration_since(last) < forget_after {
                break;
            }
            if let Some(key) = self.by_age.remove(&(last, seq)) {
                self.entries.remove(&key);
            }
        }
    }

    fn record_failure(&mut self, key: K, now: Instant, policy: &LockoutPolicy) {
        self.expire(now, policy.forget_after);
        let previous = self.entries.get(&key).copied();
        if let Some(entry) = previous {
            self.by_age.remove(&entry.order);
        } else {
            while self.entries.len() >= policy.max_entries.max(1) {
                let Some((_, oldest)) = self.by_age.pop_first() else {
                    break;
                };
                self.entries.remove(&oldest);
            }
        }
        let failures = previous.map_or(0, |e| e.failures).saturating_add(1);
        // Entries come from a monotonic clock, but never move one backwards in the index.
        let stamp = previous.map_or(now, |e| e.last_failure.max(now));
        self.seq = self.seq.wrapping_add(1);
        let order = (stamp, self.seq);
        let locked_until = now + policy.delay_after(failures);
        self.entries.insert(
            key.clone(),
            Entry {
                failures,
                last_failure: stamp,
                locked_until,
                order,
            },
        );
        self.by_age.insert(order, key);
    }
}

impl LockoutPolicy {
    /// The lock after `failures` consecutive failures.
    pub fn delay_after(&self, failures: u32) -> Duration {
        let Some(over) = failures.checked_sub(self.free_attempts + 1) else {
            return Duration::ZERO;
        };
        // 2^over, saturating long before u32 overflow matters.
        let factor = 1u32.checked_shl(over.min(31)).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Failure state for sources and accounts.
#[derive(Debug)]
pub struct Lockout {
    policy: LockoutPolicy,
    sources: Table<SourceKey>,
    accounts: Table<String>,
}

/// Account names are case-folded so "Admin" and "admin" share one counter.
fn account_key(account: &str) -> String {
    account.to_lowercase()
}

impl Lockout {
    pub fn new(policy: LockoutPolicy) -> Self {
        Self {
            policy,
            sources: Table::new(),
            accounts: Table::new(),
        }
    }

    pub fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    /// Whether an attempt from `ip` (and against `account`, when the request names one)
    /// may go ahead now. Call before any password work, so a locked-out attacker does
    /// not even cost the device an Argon2id.
    pub fn check(&self, ip: IpAddr, account: Option<&str>, now: Instant) -> Result<(), RetryAfter> {
        let source_until = self.sources.locked_until(&SourceKey::from(ip));
        let account_until = account.and_then(|a| self.accounts.locked_until(&account_key(a)));
        let until = source_until.max(account_until);
        match until {
            Some(until) if until > now => Err(RetryAfter(until - now)),
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt against the source and the account.
    pub fn record_failure(&mut self, ip: IpAddr, account: Option<&str>, now: Instant) {
        self.sources
            .record_failure(SourceKey::from(ip), now, &self.policy);
        if let Some(account) = account {
            self.accounts
                .record_failure(account_key(account), now, &self.policy);
        }
    }

    /// Clears the source and the account after a successful login.
    pub fn record_success(&mut self, ip: IpAddr, account: Option<&str>) {
        self.sources.remove(&SourceKey::from(ip));
        if let Some(account) = account {
            self.accounts.remove(&account_key(account));
        }
    }

    /// Drops idle keys; call now and then (e.g. from a minute timer). Failures also
    /// expire idle keys as they go.
    pub fn expire(&mut self, now: Instant) {
        self.sources.expire(now, self.policy.forget_after);
        self.accounts.expire(now, self.policy.forget_after);
    }

    /// Tracked (sources, accounts), for metrics and tests.
    pub fn tracked(&self) -> (usize, usize) {
        (self.sources.len(), self.accounts.len())
    }
}

impl Default for Lockout {
    fn default() -> Self {
        Self::new(LockoutPolicy::default())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address parses")
    }

    fn fail(
        lockout: &mut Lockout,
        ip: IpAddr,
        account: Option<&str>,
        now: Instant,
    ) -> Option<Duration> {
        lockout.record_failure(ip, account, now);
        lockout.check(ip, account, now).err().map(|r| r.0)
    }

    #[test]
    fn free_attempts_then_doubling_delays_up_to_the_cap() {
        let policy = LockoutPolicy::default();
        let mut lockout = Lockout::new(policy);
        let source = ip("192.168.1.50");
        let t0 = Instant::now();
        for n in 1..=5 {
            assert_eq!(
                fail(&mut lockout, source, Some("alice"), t0),
                None,
                "failure {n} is free"
            );
        }
        let mut now = t0;
        let mut expected = Duration::from_secs(1);
        let mut delays = Vec::new();
        for _ in 0..20 {
            let delay = fail(&mut lockout, source, Some("alice"), now).expect("locked");
            assert_eq!(delay, expected);
            delays.push(delay.as_secs());
            // Wait out the lock, then fail again.
            now += delay;
            assert_eq!(lockout.check(source, Some("alice"), now), Ok(()));
            expected = (expected * 2).min(policy.max_delay);
        }
        assert_eq!(&delays[..5], &[1, 2, 4, 8, 16]);
        assert_eq!(*delays.last().unwrap(), 15 * 60, "capped at 15 min");
        assert_eq!(policy.delay_after(u32::MAX), policy.max_delay);
    }

    #[test]
    fn locked_source_is_refused_for_any_account_with_retry_after() {
        let mut lockout = Lockout::default();
        let source = ip("10.0.0.7");
        let now = Instant::now();
        for _ in 0..6 {
            lockout.record_failure(source, Some("alice"), now);
        }
        let refused = lockout.check(source, Some("bob"), now).unwrap_err();
        assert_eq!(refused, RetryAfter(Duration::from_secs(1)));
        assert_eq!(refused.secs(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(1500)).secs(), 2);
        assert_eq!(
            lockout
                .check(source, None, now + Duration::from_millis(999))
                .map_err(|r| r.secs()),
            Err(1)
        );
        assert_eq!(
            lockout.check(source, None, now + Duration::from_secs(1)),
            Ok(())
        );
    }

    #[test]
    fn account_is_throttled_across_sources_and_case() {
        let mut lockout = Lockout::default();
        let now = Instant::now();
        for i in 0..6u8 {
            lockout.record_failure(IpAddr::V4(Ipv4Addr::new(10, 0, 1, i)), Some("Admin"), now);
        }
        assert!(lockout.check(ip("10.0.2.1"), Some("admin"), now).is_err());
        assert!(lockout.check(ip("10.0.2.1"), Some("alice"), now).is_ok());
        assert!(lockout.check(ip("10.0.2.1"), None, now).is_ok());
    }

    #[test]
    fn success_resets_source_and_account() {
        let mut lockout = Lockout::default();
        let source = ip("192.168.0.9");
        let now = Instant::now();
        for _ in 0..8 {
            lockout.record_failure(source, Some("alice"), now);
        }
        assert!(lockout.check(source, Some("alice"), now).is_err());
        lockout.record_success(source, Some("alice"));
        assert_eq!(lockout.check(source, Some("alice"), now), Ok(()));
        assert_eq!(lockout.tracked(), (0, 0));
        // And counting starts over: five free attempts again.
        for _ in 0..5 {
            assert_eq!(fail(&mut lockout, source, Some("alice"), now), None);
        }
        assert_eq!(
            fail(&mut lockout, source, Some("alice"), now),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn ipv6_is_grouped_by_64_and_mapped_ipv4_by_address() {
        let mut lockout = Lockout::default();
        let now = Instant::now();
        for i in 0..6u16 {
            let addr = format!("2001:db8:1:2::{:x}", i + 1);
            lockout.record_failure(ip(&addr), None, now);
        }
        assert!(
            lockout
                .check(ip("2001:db8:1:2:ffff::1"), None, now)
                .is_err(),
            "same /64"
        );
        assert!(
            lockout.check(ip("2001:db8:1:3::1"), None, now).is_ok(),
            "other /64"
        );

        for _ in 0..6 {
            lockout.record_failure(ip("::ffff:192.168.1.1"), None, now);
        }
        assert!(lockout.check(ip("192.168.1.1"), None, now).is_err());
        assert_eq!(
            SourceKey::from(ip("::ffff:1.2.3.4")),
            SourceKey::V4([1, 2, 3, 4])
        );
    }

    #[test]
    fn memory_stays_bounded_under_100k_sources() {
        let policy = LockoutPolicy::default();
        let mut lockout = Lockout::new(policy);
        let start = Instant::now();
        // A persistent attacker host, then a spray of 100 000 distinct sources.
        let attacker = ip("192.168.7.7");
        for _ in 0..10 {
            lockout.record_failure(attacker, Some("admin"), start);
        }
        for i in 0..100_000u32 {
            let source = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            let account = format!("user{i}");
            lockout.record_failure(
                source,
                Some(&account),
                start + Duration::from_millis(u64::from(i)),
            );
            let (sources, accounts) = lockout.tracked();
            assert!(sources <= policy.max_entries && accounts <= policy.max_entries);
        }
        assert_eq!(lockout.tracked(), (policy.max_entries, policy.max_entries));
        assert_eq!(
            lockout.sources.by_age.len(),
            policy.max_entries,
            "index in step"
        );
        // The newest sprayed source is still tracked; the oldest were evicted.
        let newest = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 99_999));
        assert!(
            lockout
                .sources
                .entries
                .contains_key(&SourceKey::from(newest))
        );
        assert!(
            !lockout
                .sources
                .entries
                .contains_key(&SourceKey::from(attacker))
        );
    }

    #[test]
    fn idle_keys_expire() {
        let policy = LockoutPolicy::default();
        let mut lockout = Lockout::new(policy);
        let t0 = Instant::now();
        for _ in 0..10 {
            lockout.record_failure(ip("10.1.1.1"), Some("alice"), t0);
        }
        lockout.expire(t0 + policy.forget_after - Duration::from_secs(1));
        assert_eq!(lockout.tracked(), (1, 1));
        lockout.expire(t0 + policy.forget_after);
        assert_eq!(lockout.tracked(), (0, 0));
        // A failure after the idle period starts from zero.
        assert_eq!(
            fail(
                &mut lockout,
                ip("10.1.1.1"),
                Some("alice"),
                t0 + policy.forget_after
            ),
            None
        );
    }
}
