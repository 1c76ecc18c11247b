//! Interrupts: Ctrl-C (SIGINT) and SIGTERM, which CI sends when it cancels a job. Every
//! long-running command and the test harness wait on them to clean up (containers, half-done
//! work) before they exit with 130.
//!
//! [`Interrupts::listen`] takes the signals over at once, so a signal that arrives before the
//! waiting task first runs is still seen rather than ending the process uncleaned.

#[cfg(unix)]
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Listeners for Ctrl-C and SIGTERM.
pub struct Interrupts {
    #[cfg(unix)]
    listeners: Vec<Signal>,
}

impl Interrupts {
    /// Starts listening now. Call inside a tokio runtime.
    pub fn listen() -> Interrupts {
        #[cfg(unix)]
        {
            let listeners = [SignalKind::interrupt(), SignalKind::terminate()]
                .into_iter()
                .filter_map(|kind| signal(kind).ok())
                .collect();
            Interrupts { listeners }
        }
        #[cfg(not(unix))]
        Interrupts {}
    }

    /// Waits for the next Ctrl-C or SIGTERM.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if self.listeners.is_empty() {
                return std::future::pending().await;
            }
            let waits = self.listeners.iter_mut().map(|listener| Box::pin(listener.recv()));
            futures_util::future::select_all(waits).await;
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Waits for Ctrl-C or SIGTERM, listening from the first poll on.
pub async fn interrupted() {
    Interrupts::listen().recv().await
}
