//! Ctrl-C and SIGTERM: the first asks the work to stop (a [`Cancel`] flips) so that what
//! was done is recorded; a second quits at once through the hook `main` sets. Only `main`
//! exits the process. Imports nothing from the crate but the printer's notice.

use std::sync::OnceLock;

use tokio::sync::watch;

/// Exit code after Ctrl-C, as shells expect (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// The work was stopped by Ctrl-C or SIGTERM (exit code 130).
#[derive(Debug, thiserror::Error)]
#[error("interrupted: {done} of {planned} {unit} done and recorded; run the same command again to finish")]
pub struct Interrupted {
    /// Actions or steps that completed.
    pub done: usize,
    /// Actions or steps planned.
    pub planned: usize,
    /// What they are: `actions` (a publish), `steps` (a provision).
    pub unit: &'static str,
}

/// What a second signal does: set once by `main`.
static QUIT: OnceLock<fn()> = OnceLock::new();

/// Set what a second Ctrl-C or SIGTERM does (`main`: exit 130 at once).
pub fn on_second_signal(quit: fn()) {
    let _ = QUIT.set(quit);
}

/// Flips to `true` when the user asks to stop (Ctrl-C).
pub type Cancel = watch::Receiver<bool>;

/// Listen for Ctrl-C (SIGINT) and SIGTERM (what CI runners send when a job is cancelled):
/// the first flips the returned [`Cancel`] and prints `message`; a second calls the hook
/// `main` set with [`on_second_signal`] (it exits 130 at once). Abort the returned task
/// when the work is done.
pub fn interruptible(message: &'static str) -> (Cancel, tokio::task::JoinHandle<()>) {
    let (stop, cancel) = watch::channel(false);
    let task = tokio::spawn(async move {
        if signal().await {
            let _ = stop.send(true);
            crate::output::notice(message);
            if signal().await
                && let Some(quit) = QUIT.get()
            {
                quit();
            }
        }
    });
    (cancel, task)
}

/// The next SIGINT or SIGTERM; `false` when they cannot be listened for.
async fn signal() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut terminate) = signal(SignalKind::terminate()) else { return tokio::signal::ctrl_c().await.is_ok() };
        tokio::select! {
            interrupt = tokio::signal::ctrl_c() => interrupt.is_ok(),
            _ = terminate.recv() => true,
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}
