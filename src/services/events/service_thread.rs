//! A services thread that runs until it is asked to stop: the event
//! writer's and each consumer's. Stopping sets the flag the body polls and
//! joins the thread (also on drop), so a stopped history has finished its
//! last writes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

pub struct ServiceThread {
    name: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ServiceThread {
    /// Runs `body` on a thread named `name`; `body` returns soon after the
    /// flag it is given turns true.
    pub fn spawn(
        name: String,
        body: impl FnOnce(&AtomicBool) + Send + 'static,
    ) -> std::io::Result<ServiceThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name(name.clone()).spawn(move || body(&flag))?;
        Ok(ServiceThread { name, stop, thread: Some(thread) })
    }

    /// Asks the body to finish and waits for it.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(thread = %self.name, "a history thread panicked");
            }
        }
    }
}

impl Drop for ServiceThread {
    fn drop(&mut self) {
        self.finish();
    }
}
