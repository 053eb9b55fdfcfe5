//! A namespace per test: the unit of isolation on a shared control plane.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use crate::ControlPlane;

/// Lines of each component log printed when a test fails.
const LOG_TAIL_LINES: usize = 15;

/// A namespace created for one test (see [`ControlPlane::namespace`] and
/// [`ControlPlane::in_namespace`]).
///
/// On drop it is deleted without waiting (the namespace controller removes
/// its content in the background). When the test failed (it is panicking, or
/// [`TestNamespace::finish`] got an `Err`), the component logs, the
/// namespace's events and objects are first copied to
/// `target/test-logs/<namespace>/`, whose path is printed to stderr.
#[derive(Debug)]
pub struct TestNamespace<'a> {
    plane: &'a ControlPlane,
    name: String,
}

impl<'a> TestNamespace<'a> {
    pub(crate) fn new(plane: &'a ControlPlane, name: String) -> Self {
        Self { plane, name }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The control plane the namespace lives in.
    pub fn control_plane(&self) -> &'a ControlPlane {
        self.plane
    }

    /// Ends a test that reports failure as `Err` rather than by panicking:
    /// on `Err` keeps the logs as a panic would, then deletes the namespace.
    /// (A test returning `Err` drops its namespace without panicking, so
    /// without this its logs would be lost.)
    pub fn finish<T, E: Display>(self, result: Result<T, E>) -> Result<T, E> {
        if let Err(e) = &result {
            self.report_failure(&e.to_string());
        }
        result
    }

    fn report_failure(&self, why: &str) {
        // The tails go to the failing test's captured output, which libtest
        // prints: enough to debug a CI run whose files are gone.
        for component in ["kube-apiserver", "kube-controller-manager"] {
            let log = self.plane.log_dir().join(format!("{component}.log"));
            if let Ok(text) = std::fs::read_to_string(&log) {
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
                eprintln!(
                    "--- last {} lines of {component}.log ---\n{}",
                    tail.len(),
                    tail.join("\n")
                );
            }
        }
        match self.keep_logs() {
            Ok(dir) => eprintln!(
                "trunkline-test-support: test in namespace {} failed ({why}); control-plane logs and objects in {}",
                self.name,
                dir.display()
            ),
            Err(e) => eprintln!(
                "trunkline-test-support: test in namespace {} failed ({why}); could not keep the logs: {e}; they are in {} until the test binary exits",
                self.name,
                self.plane.log_dir().display()
            ),
        }
    }

    /// Copies the component logs plus this namespace's events and objects to
    /// `target/test-logs/<namespace>/` and returns that directory. Called on
    /// drop during a panic; callable by hand for a test that wants the logs.
    pub fn keep_logs(&self) -> std::io::Result<PathBuf> {
        let dest = self.plane.test_logs_dir().join(&self.name);
        std::fs::create_dir_all(&dest)?;
        copy_logs(self.plane.state_dir(), &dest)?;
        // The namespace's own story: what happened (events) and what is left.
        let events = self
            .plane
            .kubectl(&["get", "events", "-n", &self.name, "-o", "wide"]);
        std::fs::write(
            dest.join("events.txt"),
            [events.stdout, events.stderr].concat(),
        )?;
        let kinds = self.plane.kubectl(&[
            "api-resources",
            "--namespaced",
            "--verbs=list",
            "-o",
            "name",
        ]);
        let kinds = String::from_utf8_lossy(&kinds.stdout)
            .lines()
            // Events are in events.txt; Endpoints only add a deprecation warning.
            .filter(|k| !matches!(*k, "events" | "events.events.k8s.io" | "endpoints"))
            .collect::<Vec<_>>()
            .join(",");
        if !kinds.is_empty() {
            let objects = self.plane.kubectl(&[
                "get",
                &kinds,
                "-n",
                &self.name,
                "-o",
                "yaml",
                "--ignore-not-found",
            ]);
            std::fs::write(
                dest.join("objects.yaml"),
                [objects.stdout, objects.stderr].concat(),
            )?;
        }
        Ok(dest)
    }
}

impl Drop for TestNamespace<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.report_failure("panic");
        }
        // Best effort and non-blocking: a detached thread, since Drop cannot
        // await and the test's runtime is about to go away. If the process
        // exits first, the whole control plane goes with it anyway.
        let plane = self.plane.kubeconfig().to_path_buf();
        let kubectl = self.plane.kubectl_command();
        let name = self.name.clone();
        std::thread::spawn(move || {
            let _ = std::process::Command::new(kubectl)
                .arg("--kubeconfig")
                .arg(plane)
                .args([
                    "delete",
                    "namespace",
                    &name,
                    "--wait=false",
                    "--ignore-not-found",
                ])
                .stdin(std::process::Stdio::null())
                .output();
        });
    }
}

/// Copies every `*.log` file of the state dir into `dest`.
fn copy_logs(state_dir: &Path, dest: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(state_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "log")
            && let Some(file) = path.file_name()
        {
            std::fs::copy(&path, dest.join(file))?;
        }
    }
    Ok(())
}
