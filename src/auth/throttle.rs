//! Login throttling: too many failed logins for one username, or from one client address,
//! within a window block further attempts for that key until the oldest failure ages out.
//! Successful logins are never delayed and clear the username's failures.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::error::AppError;

/// Failures are counted over this window.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures allowed per username within the window.
const USERNAME_LIMIT: usize = 5;
/// Failures allowed per client address within the window (several users may share one).
const ADDRESS_LIMIT: usize = 20;
/// Above this many tracked keys, expired entries are swept out on the next failure.
const SWEEP_THRESHOLD: usize = 10_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Key {
    Username(String),
    Address(IpAddr),
}

impl Key {
    fn limit(&self) -> usize {
        match self {
            Key::Username(_) => USERNAME_LIMIT,
            Key::Address(_) => ADDRESS_LIMIT,
        }
    }
}

#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl LoginThrottle {
    /// Fails with 429 (and the seconds to wait) when `username` or `address` is blocked.
    pub fn check(&self, username: &str, address: Option<IpAddr>) -> Result<(), AppError> {
        let now = Instant::now();
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let wait = keys(username, address)
            .filter_map(|key| {
                let times = failures.get(&key)?;
                let recent: Vec<_> = times.iter().filter(|t| now - **t < WINDOW).collect();
                (recent.len() >= key.limit()).then(|| WINDOW - (now - *recent[0]))
            })
            .max();
        match wait {
            Some(wait) => Err(AppError::TooManyRequests {
                retry_after_secs: wait.as_secs().max(1),
            }),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, username: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() > SWEEP_THRESHOLD {
            failures.retain(|_, times| times.back().is_some_and(|last| now - *last < WINDOW));
        }
        for key in keys(username, address) {
            let limit = key.limit();
            let times = failures.entry(key).or_default();
            times.push_back(now);
            // Only the newest `limit` failures matter for the decision.
            while times.len() > limit {
                times.pop_front();
            }
        }
    }

    pub fn record_success(&self, username: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(&Key::Username(username.to_owned()));
    }
}

fn keys(username: &str, address: Option<IpAddr>) -> impl Iterator<Item = Key> {
    [
        Some(Key::Username(username.to_owned())),
        address.map(Key::Address),
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn blocks_a_username_after_its_limit_and_says_how_long() {
        let throttle = LoginThrottle::default();
        for _ in 0..USERNAME_LIMIT {
            throttle.check("ann", HOME).unwrap();
            throttle.record_failure("ann", HOME);
        }
        let Err(AppError::TooManyRequests { retry_after_secs }) = throttle.check("ann", HOME)
        else {
            panic!("expected 429");
        };
        assert!(retry_after_secs > 0 && retry_after_secs <= WINDOW.as_secs());
        // Another user from another address is not affected.
        throttle.check("bob", None).unwrap();
    }

    #[test]
    fn blocks_an_address_that_tries_many_usernames() {
        let throttle = LoginThrottle::default();
        for n in 0..ADDRESS_LIMIT {
            throttle.record_failure(&format!("user{n}"), HOME);
        }
        assert!(throttle.check("fresh", HOME).is_err());
        assert!(throttle.check("fresh", None).is_ok());
    }

    #[test]
    fn success_clears_the_username() {
        let throttle = LoginThrottle::default();
        for _ in 0..USERNAME_LIMIT - 1 {
            throttle.record_failure("ann", None);
        }
        throttle.record_success("ann");
        throttle.record_failure("ann", None);
        throttle.check("ann", None).unwrap();
    }
}
