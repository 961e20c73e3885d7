//! The reference workload both benches divide by: ChaCha20-Poly1305 sealing with ring,
//! in TLS-sized records.
//!
//! Why this one: it is exactly the work the server does for every client and every
//! frame it sends (TLS 1.3 with the ChaCha20-Poly1305 suite it prefers, design decision
//! 2), so "JPEG encode ÷ seal" reads as "one encode costs as much CPU as the cipher work
//! of sending that frame to N clients", and "fan-out cost per frame ÷ seal" is the
//! overhead beyond the cipher (syscalls, copies, HTTP framing). It is pure CPU with a
//! small working set, like the encoder's inner loops; memcpy would mostly measure the
//! memory bus, which differs between hosts in a different way.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

use crate::stats::Summary;

/// TLS sends at most 16 KiB of plaintext per record; each record is sealed on its own.
pub const TLS_RECORD: usize = 16 * 1024;

pub struct Sealer {
    key: LessSafeKey,
    counter: u64,
}

impl Default for Sealer {
    fn default() -> Self {
        Self::new()
    }
}

impl Sealer {
    pub fn new() -> Self {
        // A fixed key: this measures speed, nothing is protected.
        let key = UnboundKey::new(&CHACHA20_POLY1305, &[0x42; 32])
            .expect("a 32-byte key is valid for ChaCha20-Poly1305");
        Self {
            key: LessSafeKey::new(key),
            counter: 0,
        }
    }

    /// Encrypts `buf` in place as TLS would send it: 16 KiB records, each with its own
    /// nonce and tag (the tags are discarded).
    pub fn seal_records(&mut self, buf: &mut [u8]) {
        for record in buf.chunks_mut(TLS_RECORD) {
            self.counter += 1;
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&self.counter.to_be_bytes());
            let tag = self
                .key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::empty(),
                    record,
                )
                .expect("a record of at most 16 KiB is never too long to seal");
            let _ = black_box(tag);
        }
    }

    /// Times sealing `len` bytes again and again for about `budget`, after a short
    /// warm-up. Samples are in microseconds per `len` bytes.
    pub fn measure(&mut self, len: usize, budget: Duration) -> Summary {
        let mut buf = vec![0x5A; len];
        let warm_until = Instant::now() + budget / 10;
        while Instant::now() < warm_until {
            self.seal_records(&mut buf);
        }
        let mut samples = Vec::new();
        let end = Instant::now() + budget;
        while Instant::now() < end || samples.len() < 20 {
            let t = Instant::now();
            self.seal_records(black_box(&mut buf));
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
        Summary::of(&samples).expect("at least 20 samples")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_every_record_with_a_fresh_nonce() {
        let mut s = Sealer::new();
        let mut a = vec![0u8; 2 * TLS_RECORD];
        s.seal_records(&mut a);
        assert_eq!(s.counter, 2);
        assert_ne!(
            a[..TLS_RECORD],
            a[TLS_RECORD..],
            "records with different nonces encrypt differently"
        );
    }
}
