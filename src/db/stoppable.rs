//! A thread of its own for database work that must not wait on the pool or
//! the async workers (the change listener, the heartbeat): it runs until its
//! handle is dropped, which stops it and waits for it to finish.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The running thread; stopped and joined when dropped.
pub struct StoppableThread {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StoppableThread {
    /// Runs `body` on a thread named `name`; `body` returns once the flag
    /// it is given turns true.
    pub fn spawn(
        name: &str,
        body: impl FnOnce(&AtomicBool) + Send + 'static,
    ) -> std::io::Result<StoppableThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(&stopping))?;
        Ok(StoppableThread {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for StoppableThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
