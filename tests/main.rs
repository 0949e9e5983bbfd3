//! The integration tests: the `skiff` binary against the local AWS emulator (moto), started
//! by `scripts/test`, which exports its endpoint as `SKIFF_TEST_ENDPOINT`. Without it these
//! tests fail and say so; they never pass by skipping.

mod bad_input;
mod cdn;
mod deploy;
mod faults;
mod harness;
mod iam;
mod init;
mod kill;
mod provision;
mod publish;
mod reliability;
mod routing;
mod security;
