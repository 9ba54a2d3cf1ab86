//! Which key each request touches: uniform, Zipf or sequential over `0 .. key_space`.
//!
//! The Zipf sampler is rejection-inversion (W. Hörmann and G. Derflinger, "Rejection-inversion
//! to generate variates from monotone discrete distributions", ACM TOMACS 6(3), 1996), as in
//! Apache Commons RNG's `RejectionInversionZipfSampler`. It is exact (it draws from the Zipf
//! distribution itself, not an approximation), needs O(1) memory and an expected O(1) time per
//! draw for any key space, where a precomputed CDF would need 8 bytes per key (800 MB for
//! 10^8 keys) and a binary search per draw.

use rand::Rng;
use rand::rngs::SmallRng;

use super::options::KeyPattern;

/// Draws after which a Zipf draw gives up rejecting and returns its last candidate. The
/// acceptance probability of one round is above 1/2 for every exponent and size, so this
/// happens with probability below 2^-64: the bound exists only so that no loop is unbounded.
const ZIPF_ROUNDS_MAX: u32 = 64;

/// Chooses the keys of one client.
#[derive(Debug, Clone)]
pub enum KeyChooser {
    /// Every key of `0 .. key_space` equally likely.
    Uniform {
        /// The key space.
        key_space: u64,
    },
    /// Zipf ranks; rank k is key k - 1.
    Zipf(Zipf),
    /// `next`, `next + stride`, ... wrapping around to `first`.
    Sequential {
        /// The key this client starts each pass with.
        first: u64,
        /// The next key.
        next: u64,
        /// The number of clients (capped at the key space).
        stride: u64,
        /// The key space.
        key_space: u64,
    },
}

impl KeyChooser {
    /// The chooser of client `client` of `clients`.
    pub fn new(
        pattern: KeyPattern,
        key_space: u64,
        zipf_exponent: f64,
        client: u32,
        clients: u32,
    ) -> KeyChooser {
        assert!(key_space >= 1, "an empty key space");
        match pattern {
            KeyPattern::Uniform => KeyChooser::Uniform { key_space },
            KeyPattern::Zipf => KeyChooser::Zipf(Zipf::new(key_space, zipf_exponent)),
            KeyPattern::Sequential => {
                let first = u64::from(client) % key_space;
                KeyChooser::Sequential {
                    first,
                    next: first,
                    stride: u64::from(clients.max(1)),
                    key_space,
                }
            }
        }
    }

    /// The next key index.
    pub fn next_key(&mut self, rng: &mut SmallRng) -> u64 {
        match self {
            KeyChooser::Uniform { key_space } => rng.random_range(0..*key_space),
            KeyChooser::Zipf(zipf) => zipf.sample(rng) - 1,
            KeyChooser::Sequential {
                first,
                next,
                stride,
                key_space,
            } => {
                let key = *next;
                *next = match key.checked_add(*stride) {
                    Some(n) if n < *key_space => n,
                    _ => *first,
                };
                key
            }
        }
    }
}

/// The Zipf distribution over ranks `1 ..= n`, P(k) proportional to 1 / k^s, sampled by
/// rejection-inversion.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    exponent: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    s: f64,
}

impl Zipf {
    /// The distribution over `1 ..= n` with exponent `exponent` (> 0).
    ///
    /// # Panics
    /// If `n` is 0 or the exponent is not positive and finite (the options refuse both).
    pub fn new(n: u64, exponent: f64) -> Zipf {
        assert!(n >= 1, "Zipf over no ranks");
        assert!(
            exponent > 0.0 && exponent.is_finite(),
            "Zipf exponent {exponent}"
        );
        let mut zipf = Zipf {
            n: n as f64,
            exponent,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            s: 0.0,
        };
        zipf.h_integral_x1 = zipf.h_integral(1.5) - 1.0;
        zipf.h_integral_n = zipf.h_integral(zipf.n + 0.5);
        zipf.s = 2.0 - zipf.h_integral_inverse(zipf.h_integral(2.5) - zipf.h(2.0));
        zipf
    }

    /// One rank in `1 ..= n`.
    pub fn sample(&self, rng: &mut SmallRng) -> u64 {
        let mut k = 1.0;
        for _ in 0..ZIPF_ROUNDS_MAX {
            // u is uniform in (h_integral_x1, h_integral_n].
            let u =
                self.h_integral_n + rng.random::<f64>() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            k = (x + 0.5).floor().clamp(1.0, self.n);
            // The first test accepts most draws without evaluating h; the second is exact.
            if k - x <= self.s || u >= self.h_integral(k + 0.5) - self.h(k) {
                break;
            }
        }
        k as u64
    }

    /// h(x) = 1 / x^s, the unnormalized density.
    fn h(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }

    /// H(x), an antiderivative of h: (x^(1-s) - 1) / (1 - s), or ln x when s = 1, written so
    /// that it stays accurate near s = 1.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.exponent) * log_x) * log_x
    }

    /// The inverse of H.
    fn h_integral_inverse(&self, x: f64) -> f64 {
        // Rounding may push t below -1, where log1p is undefined.
        let t = (x * (1.0 - self.exponent)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// ln(1 + x) / x, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (e^x - 1) / x, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> SmallRng {
        SmallRng::seed_from_u64(42)
    }

    #[test]
    fn uniform_stays_in_range_and_covers_it() {
        let mut chooser = KeyChooser::new(KeyPattern::Uniform, 100, 0.99, 0, 1);
        let mut seen = [0u32; 100];
        let mut rng = rng();
        for _ in 0..20_000 {
            seen[chooser.next_key(&mut rng) as usize] += 1;
        }
        // 200 expected per key; a key below 100 is more than 7 sigma off.
        assert!(seen.iter().all(|&c| c > 100), "{seen:?}");
    }

    #[test]
    fn zipf_rank_one_is_drawn_two_to_the_s_times_as_often_as_rank_two() {
        for exponent in [0.5, 0.99, 1.0, 1.5] {
            let zipf = Zipf::new(100, exponent);
            let mut rng = rng();
            let mut counts = [0u64; 3];
            let draws = 400_000;
            for _ in 0..draws {
                let k = zipf.sample(&mut rng);
                assert!((1..=100).contains(&k), "rank {k} out of range");
                if k <= 2 {
                    counts[k as usize] += 1;
                }
            }
            let ratio = counts[1] as f64 / counts[2] as f64;
            let want = 2f64.powf(exponent);
            // Rank 2 gets at least 3.8% of the draws (s = 0.5), 15,000 of them: the ratio's
            // relative standard error is then about 1%; allow 5%.
            assert!(
                (ratio / want - 1.0).abs() < 0.05,
                "s={exponent}: rank1/rank2 = {ratio}, want {want}"
            );
        }
    }

    #[test]
    fn zipf_matches_the_exact_probabilities_over_a_small_space() {
        let (n, exponent) = (10u64, 0.99);
        let zipf = Zipf::new(n, exponent);
        let weights: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-exponent)).collect();
        let total: f64 = weights.iter().sum();
        let mut counts = vec![0u64; n as usize];
        let mut rng = rng();
        let draws = 200_000u64;
        for _ in 0..draws {
            counts[(zipf.sample(&mut rng) - 1) as usize] += 1;
        }
        for (k, (&count, w)) in counts.iter().zip(&weights).enumerate() {
            let p = w / total;
            let sigma = (draws as f64 * p * (1.0 - p)).sqrt();
            let off = (count as f64 - draws as f64 * p).abs();
            assert!(
                off < 5.0 * sigma,
                "rank {}: {count} draws, want {}",
                k + 1,
                p * draws as f64
            );
        }
    }

    #[test]
    fn zipf_keys_stay_in_range_for_tiny_and_huge_spaces() {
        let mut rng = rng();
        for n in [1u64, 2, 3, 1 << 40] {
            let mut chooser = KeyChooser::new(KeyPattern::Zipf, n, 0.99, 0, 1);
            for _ in 0..10_000 {
                assert!(chooser.next_key(&mut rng) < n);
            }
        }
    }

    #[test]
    fn sequential_clients_together_cover_every_key_once_per_pass() {
        for (key_space, clients) in [(100u64, 7u32), (12, 12), (10, 1), (1000, 64)] {
            let mut choosers: Vec<KeyChooser> = (0..clients)
                .map(|c| KeyChooser::new(KeyPattern::Sequential, key_space, 0.99, c, clients))
                .collect();
            let mut rng = rng();
            for pass in 0..2 {
                let mut seen = vec![0u32; key_space as usize];
                for (c, chooser) in choosers.iter_mut().enumerate() {
                    let share = (key_space - c as u64).div_ceil(u64::from(clients));
                    let mut last = None;
                    for _ in 0..share {
                        let key = chooser.next_key(&mut rng);
                        assert!(last.is_none_or(|l| key > l), "client {c} not in order");
                        last = Some(key);
                        seen[key as usize] += 1;
                    }
                }
                assert!(
                    seen.iter().all(|&n| n == 1),
                    "pass {pass} of {key_space} keys by {clients} clients: {seen:?}"
                );
            }
        }
    }
}
