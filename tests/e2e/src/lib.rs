//! End-to-end tests of trunkline against a real Kubernetes control plane.
//!
//! The tests live under `tests/`; each test binary starts one control plane
//! through `trunkline-test-support` and shares it among its tests. This
//! library is empty on purpose.
