//! When each open-loop request is meant to leave: a pure function of the rate, the arrival
//! process and a seed, so a run's intended send times are reproducible and a late send is
//! measurable against them.

use serde::{Deserialize, Serialize};

/// How requests arrive in an open loop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Arrival {
    /// Evenly spaced, `1/rate` apart.
    Constant,
    /// Exponential gaps (a Poisson process).
    Poisson,
    /// Gamma-distributed gaps with shape `burstiness` and the same mean `1/rate`: below 1 is
    /// burstier than Poisson, 1 is Poisson, above 1 is steadier (vLLM's `--burstiness`).
    Gamma {
        /// The gamma distribution's shape.
        burstiness: f64,
    },
}

/// A small, fast, seedable generator (SplitMix64): the schedule must not depend on a crate's
/// algorithm choice across versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so `ln` is finite.
    pub(crate) fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        (-2.0 * self.unit().ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }

    /// Gamma(shape, 1) by Marsaglia and Tsang (shape < 1 through the `U^(1/shape)` boost).
    pub(crate) fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            return self.gamma(shape + 1.0) * self.unit().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.unit();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
}

/// Gaps between intended sends, in seconds.
#[derive(Debug, Clone)]
pub struct Schedule {
    rate: f64,
    arrival: Arrival,
    rng: Rng,
}

impl Schedule {
    /// `rate` in requests per second (positive and finite; the CLI checks).
    pub fn new(rate: f64, arrival: Arrival, seed: u64) -> Self {
        Self { rate, arrival, rng: Rng::new(seed) }
    }

    /// The gap before the next request, in seconds.
    pub fn next_gap(&mut self) -> f64 {
        let mean = 1.0 / self.rate;
        match self.arrival {
            Arrival::Constant => mean,
            Arrival::Poisson => -self.rng.unit().ln() * mean,
            Arrival::Gamma { burstiness } => self.rng.gamma(burstiness) * mean / burstiness,
        }
    }
}
