//! Bounded polling: controllers act asynchronously, so tests wait for an
//! outcome, but never longer than a stated bound.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use crate::Error;

/// Calls `probe` until it returns `Ok`, at most for `timeout`.
///
/// `Err(reason)` means "not yet"; the last reason goes into the
/// [`Error::Timeout`] so that a failing test says what it saw. Probes start
/// 100 ms apart and back off to 1 s.
pub async fn eventually<T, E, F, Fut>(
    what: &str,
    timeout: Duration,
    mut probe: F,
) -> Result<T, Error>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(100);
    loop {
        let last = match tokio::time::timeout_at(deadline, probe()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(reason)) => reason.to_string(),
            Err(_) => "the probe itself did not finish".to_string(),
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                what: what.to_string(),
                timeout,
                last,
            });
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_success() {
        let mut calls = 0;
        let value = eventually("third call", Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move {
                if n >= 3 {
                    Ok(n)
                } else {
                    Err(format!("call {n}"))
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn times_out_with_the_last_reason() {
        let err = eventually("never", Duration::from_millis(300), || async {
            Err::<(), _>("not yet")
        })
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("never") && text.contains("not yet"), "{text}");
    }
}
