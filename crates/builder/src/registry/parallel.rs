//! A fixed number of worker threads over a slice; the first error stops the others from
//! starting new items and is returned.

use crate::error::Result;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

pub(super) fn for_each<T: Sync>(items: &[T], workers: usize, f: impl Fn(&T) -> Result<()> + Sync) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if let Err(e) = f(item) {
                        failed.store(true, Ordering::Relaxed);
                        first_error.lock().expect("lock").get_or_insert(e);
                    }
                }
            });
        }
    });
    match first_error.into_inner().expect("lock") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn runs_all_and_reports_the_first_error() {
        let seen = AtomicUsize::new(0);
        for_each(&[1, 2, 3, 4, 5], 3, |_| {
            seen.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.load(Ordering::Relaxed), 5);
        let e = for_each(&[1, 2, 3], 2, |i| if *i == 2 { Err(Error::malformed("t", "two")) } else { Ok(()) }).unwrap_err();
        assert!(e.to_string().contains("two"));
    }
}
