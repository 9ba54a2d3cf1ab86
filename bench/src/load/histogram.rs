//! Latency histograms: HDR histograms in microseconds, 1 µs .. 60 s at 3 significant digits
//! (values within 0.1%), recorded per connection and merged at the end.
//!
//! A connection's histogram counts in `u32` (about 70 KB each instead of 140 KB, which matters
//! with a thousand connections; one bucket would need 4 billion samples from one connection to
//! saturate); the merged one counts in `u64`.

use hdrhistogram::Histogram;
use serde::Serialize;

/// The smallest latency told apart, in microseconds.
pub const LATENCY_US_MIN: u64 = 1;
/// The largest latency recorded, in microseconds: longer ones are recorded as this.
pub const LATENCY_US_MAX: u64 = 60_000_000;
/// Significant decimal digits kept.
pub const SIGNIFICANT_DIGITS: u8 = 3;

fn new_histogram<T: hdrhistogram::Counter>() -> Histogram<T> {
    Histogram::new_with_bounds(LATENCY_US_MIN, LATENCY_US_MAX, SIGNIFICANT_DIGITS)
        .expect("the bounds are constants that hdrhistogram accepts")
}

/// The latencies one connection recorded for one operation.
#[derive(Debug, Clone)]
pub struct Latency {
    histogram: Histogram<u32>,
}

impl Default for Latency {
    fn default() -> Latency {
        Latency {
            histogram: new_histogram(),
        }
    }
}

impl Latency {
    /// Records one latency, clamped to 1 µs .. 60 s.
    pub fn record(&mut self, us: u64) {
        self.histogram.saturating_record(us);
    }

    /// How many latencies were recorded.
    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// Forgets every latency (for the progress line's interval histogram).
    pub fn reset(&mut self) {
        self.histogram.reset();
    }

    /// The latency at quantile `q` (0..=1) in microseconds, 0 when empty.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.histogram.value_at_quantile(q)
        }
    }
}

/// Latencies merged over connections (and operations).
#[derive(Debug, Clone)]
pub struct LatencyTotal {
    histogram: Histogram<u64>,
}

impl Default for LatencyTotal {
    fn default() -> LatencyTotal {
        LatencyTotal {
            histogram: new_histogram(),
        }
    }
}

impl LatencyTotal {
    /// Adds every latency of `part`.
    pub fn add(&mut self, part: &Latency) {
        for bucket in part.histogram.iter_recorded() {
            self.histogram.saturating_record_n(
                bucket.value_iterated_to(),
                u64::from(bucket.count_at_value()),
            );
        }
    }

    /// Adds every latency of `other`.
    pub fn merge(&mut self, other: &LatencyTotal) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms with the same bounds always add");
    }

    /// How many latencies were recorded.
    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// The percentiles in milliseconds; all zero when nothing was recorded.
    pub fn summary(&self) -> LatencySummary {
        if self.is_empty() {
            return LatencySummary::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &self.histogram;
        LatencySummary {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// Latency percentiles in milliseconds (each the highest value of its bucket, so at most 0.1%
/// above the true value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `got` is within the histogram's 0.1% resolution of `want` (both in ms).
    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= want * 0.001 + 1e-9
    }

    #[test]
    fn percentiles_of_one_to_ten_thousand_microseconds() {
        let mut latency = Latency::default();
        for us in 1..=10_000 {
            latency.record(us);
        }
        let mut total = LatencyTotal::default();
        total.add(&latency);
        let s = total.summary();
        assert_eq!(total.len(), 10_000);
        assert!(close(s.p50, 5.0), "{s:?}");
        assert!(close(s.p90, 9.0), "{s:?}");
        assert!(close(s.p99, 9.9), "{s:?}");
        assert!(close(s.p99_9, 9.99), "{s:?}");
        assert!(close(s.max, 10.0), "{s:?}");
        assert!(close(s.mean, 5.0005), "{s:?}");
    }

    #[test]
    fn out_of_range_latencies_are_clamped_not_lost() {
        let mut latency = Latency::default();
        latency.record(0);
        latency.record(LATENCY_US_MAX * 10);
        let mut total = LatencyTotal::default();
        total.add(&latency);
        assert_eq!(total.len(), 2);
        assert!(close(total.summary().max, LATENCY_US_MAX as f64 / 1000.0));
    }

    #[test]
    fn an_empty_histogram_reports_zeros() {
        assert_eq!(LatencyTotal::default().summary(), LatencySummary::default());
        assert_eq!(Latency::default().quantile_us(0.99), 0);
    }

    #[test]
    fn merging_equals_recording_everything_in_one() {
        let mut parts = [Latency::default(), Latency::default(), Latency::default()];
        let mut one = Latency::default();
        for i in 0..30_000u64 {
            let us = (i * 7919) % 200_000 + 1;
            parts[(i % 3) as usize].record(us);
            one.record(us);
        }
        let mut merged = LatencyTotal::default();
        let mut halves = [LatencyTotal::default(), LatencyTotal::default()];
        for (i, part) in parts.iter().enumerate() {
            merged.add(part);
            halves[i % 2].add(part);
        }
        halves[0].merge(&halves[1].clone());
        let mut direct = LatencyTotal::default();
        direct.add(&one);
        assert_eq!(merged.summary(), direct.summary());
        assert_eq!(halves[0].summary(), direct.summary());
        assert_eq!(merged.len(), 30_000);
    }
}
