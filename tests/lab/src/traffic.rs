//! Running programs in the lab's namespaces and the traffic tests send
//! with them: ping and a TCP exchange with `nc` that starts sending only
//! once the server listens (no sleep before connecting).

use std::net::IpAddr;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{Lab, LabError};

/// Calls `probe` every 50 ms until it returns `Ok`, at most for `timeout`;
/// then [`LabError::Timeout`] with the last `Err` it gave.
pub fn poll_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> Result<T, LabError> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe() {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            return Err(LabError::Timeout {
                what: what.to_owned(),
                timeout,
                last,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// stdout and stderr of `out`, one after the other.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Lab {
    /// Runs `args` in the namespace of `name` (see [`Lab::namespace`]).
    ///
    /// # Panics
    /// When `ip` cannot be started at all.
    pub fn exec(&self, name: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.namespace(name)])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec runs")
    }

    /// Runs a shell command line in the namespace of `name`.
    ///
    /// # Panics
    /// When `ip` cannot be started at all.
    pub fn sh(&self, name: &str, line: &str) -> Output {
        self.exec(name, &["sh", "-c", line])
    }

    /// `ping -c count` (IPv4 or IPv6) from `from` to `to`: (success, ping's
    /// output).
    pub fn ping(&self, from: &str, to: &str, count: u32) -> (bool, String) {
        let out = self.exec(
            from,
            &["ping", "-c", &count.to_string(), "-i", "0.2", "-W", "1", to],
        );
        (out.status.success(), output_text(&out))
    }

    /// Sends `payload` over TCP from `from` to `to:port`, where `server`
    /// listens (`nc`); returns what the server received. The client starts
    /// once the server's socket is listening (`ss` in its namespace).
    pub fn tcp(
        &self,
        from: &str,
        server: &str,
        to: &str,
        port: u16,
        payload: &str,
    ) -> Result<String, String> {
        let family = match to.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => "-6",
            _ => "-4",
        };
        let listen = format!("exec timeout 10 nc {family} -l -N {port}");
        let mut listener = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.namespace(server),
                "sh",
                "-c",
                &listen,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let listening = poll_until(
            &format!("nc listening on port {port} in {server}"),
            Duration::from_secs(5),
            || {
                if let Ok(Some(status)) = listener.try_wait() {
                    return Ok(Err(format!("the listener exited ({status})")));
                }
                let out = self.exec(server, &["ss", "-Hltn", &format!("sport = :{port}")]);
                if String::from_utf8_lossy(&out.stdout).contains("LISTEN") {
                    Ok(Ok(()))
                } else {
                    Err(output_text(&out))
                }
            },
        );
        match listening {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => {
                let _ = listener.kill();
                let _ = listener.wait();
                return Err(e.to_string());
            }
        }
        let send = format!("printf '%s' '{payload}' | timeout 10 nc -N -w 3 {to} {port}");
        let sent = self.sh(from, &send);
        // The listener ends by itself: with the client's EOF, or its timeout.
        let received = listener.wait_with_output().map_err(|e| e.to_string())?;
        if !sent.status.success() {
            return Err(format!("client failed: {}", output_text(&sent)));
        }
        Ok(String::from_utf8_lossy(&received.stdout).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_until_returns_the_first_success_or_the_last_reason() {
        let mut n = 0;
        let got = poll_until("third", Duration::from_secs(5), || {
            n += 1;
            if n >= 3 {
                Ok(n)
            } else {
                Err(format!("call {n}"))
            }
        })
        .unwrap();
        assert_eq!(got, 3);
        let err = poll_until::<()>(
            "never",
            Duration::from_millis(120),
            || Err("not yet".into()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("never") && err.contains("not yet"), "{err}");
    }
}
