//! Paced one-way UDP streams and the loss window a failure cuts into them.
//!
//! ```text
//!  ip netns exec <from> trunkline-bench pace --to IP:PORT --rate R --seconds S
//!        ──UDP, one datagram every 1/R s──>
//!  ip netns exec <to>   trunkline-bench sink --port PORT --seconds S   (arrival times, wall clock)
//!
//!  loss window = the longest gap between two arrivals that ends after the
//!                failure, less one interval (0 when nothing was lost)
//! ```
//! One-way streams measure each direction on its own (a ping's round trip
//! would mix them); the sink's wall clock is the benchmark's (one machine).

use std::io::{self, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::Error;

/// Seconds since the epoch, now.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Sends one datagram to `to` every `1/rate` s for `seconds` (the payload:
/// its sequence number); returns how many were sent.
pub fn pace(to: SocketAddr, rate: u32, seconds: f64) -> io::Result<u64> {
    let socket = UdpSocket::bind(SocketAddr::new(
        if to.is_ipv4() {
            "0.0.0.0".parse().expect("an address")
        } else {
            "::".parse().expect("an address")
        },
        0,
    ))?;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut seq: u64 = 0;
    while Instant::now() < end {
        // Errors (no route, unresolved neighbour) are what a failure does:
        // keep pacing.
        let _ = socket.send_to(&seq.to_be_bytes(), to);
        seq += 1;
        let next = start + interval * u32::try_from(seq).unwrap_or(u32::MAX);
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
    Ok(seq)
}

/// Receives on UDP `port` for `seconds`; then writes every arrival's
/// wall-clock time to stdout, one per line (at the end: a pipe that fills
/// while receiving would stall the sink and fake a loss).
pub fn sink(port: u16, seconds: f64) -> io::Result<()> {
    let socket = UdpSocket::bind(SocketAddr::new(
        "0.0.0.0".parse().expect("an address"),
        port,
    ))?;
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut buf = [0u8; 64];
    let mut arrivals = Vec::with_capacity((seconds * 2000.0) as usize);
    while Instant::now() < end {
        if socket.recv_from(&mut buf).is_ok() {
            arrivals.push(now_secs());
        }
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    for t in arrivals {
        writeln!(out, "{t:.6}")?;
    }
    out.flush()
}

/// A stream being measured: its sink and pacer processes.
pub struct Stream {
    /// What it is, for the report (`r1 -> r3`, ...).
    pub name: String,
    sink: Child,
    pacer: Child,
    interval: Duration,
}

/// The port streams use (each sink has its own namespace).
const PORT_BASE: u16 = 47000;

impl Stream {
    /// Starts a stream from namespace `from` to `to_ip` in namespace `to`
    /// (`index` picks its port) at `rate` per second for `seconds`.
    pub fn start(
        name: &str,
        bench: &std::path::Path,
        (from, to, to_ip): (&str, &str, &str),
        index: u16,
        rate: u32,
        seconds: f64,
    ) -> Result<Stream, Error> {
        let port = PORT_BASE + index;
        let spawn = |ns: &str, args: Vec<String>, stdout: Stdio| {
            Command::new("ip")
                .args(["netns", "exec", ns])
                .arg(bench)
                .args(args)
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(Stdio::null())
                .spawn()
                .map_err(Error::io(format!("starting the stream {name} in {ns}")))
        };
        let sink = spawn(
            to,
            vec![
                "sink".into(),
                "--port".into(),
                port.to_string(),
                "--seconds".into(),
                format!("{seconds}"),
            ],
            Stdio::piped(),
        )?;
        // The sink binds before the first datagram.
        std::thread::sleep(Duration::from_millis(100));
        let pacer = spawn(
            from,
            vec![
                "pace".into(),
                "--to".into(),
                format!("{to_ip}:{port}"),
                "--rate".into(),
                rate.to_string(),
                "--seconds".into(),
                format!("{}", (seconds - 0.3).max(0.1)),
            ],
            Stdio::null(),
        )?;
        Ok(Stream {
            name: name.to_owned(),
            sink,
            pacer,
            interval: Duration::from_secs_f64(1.0 / f64::from(rate.max(1))),
        })
    }

    /// Waits for both ends; the loss window around `failed_at` in seconds,
    /// or `None` when nothing arrived after it. The arrival times are kept
    /// in `keep` (a file), with the failure's time first.
    pub fn finish(
        mut self,
        failed_at: f64,
        keep: &std::path::Path,
    ) -> Result<(String, Option<f64>), Error> {
        let _ = self.pacer.wait();
        let out = self
            .sink
            .wait_with_output()
            .map_err(Error::io(format!("the sink of {}", self.name)))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let _ = std::fs::write(keep, format!("# failed at {failed_at:.6}\n{text}"));
        let arrivals: Vec<f64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        Ok((self.name, loss_window(&arrivals, failed_at, self.interval)))
    }
}

/// The longest gap between two arrivals that ends after `failed_at`, less
/// one interval; `None` when nothing arrived after `failed_at`.
pub fn loss_window(arrivals: &[f64], failed_at: f64, interval: Duration) -> Option<f64> {
    if !arrivals.iter().any(|t| *t > failed_at) {
        return None;
    }
    let worst = arrivals
        .windows(2)
        .filter(|w| w[1] > failed_at)
        .map(|w| w[1] - w[0])
        .fold(0.0f64, f64::max);
    Some((worst - interval.as_secs_f64()).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loss_window_is_the_gap_across_the_failure() {
        let ms = Duration::from_millis(1);
        let arrivals = [1.000, 1.001, 1.002, 1.350, 1.351, 1.352];
        let w = loss_window(&arrivals, 1.0025, ms).unwrap();
        assert!((w - 0.347).abs() < 1e-9, "{w}");
        assert_eq!(loss_window(&arrivals, 2.0, ms), None, "nothing after");
        let none_lost = loss_window(&[1.0, 1.001, 1.002], 0.5, ms).unwrap();
        assert!(none_lost < 1e-9, "nothing lost: {none_lost}");
    }
}
