//! The deadline thread: sleeps until the earliest pending break deadline (a heap, not a
//! scan), revokes what is due, and goes back to sleep. Its cost is per revocation, not
//! per lease held.

use super::{Outbox, Shared};
use std::sync::Arc;
use std::thread::JoinHandle;

pub(crate) fn spawn(shared: Arc<Shared>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("leasefs-deadlines".into())
        .spawn(move || run(shared))
        .unwrap_or_else(|e| panic!("cannot start the break deadline thread: {e}"))
}

fn run(sh: Arc<Shared>) {
    let mut st = sh.state.lock();
    loop {
        if st.shutdown {
            return;
        }
        let now = sh.now();
        match st.next_deadline() {
            Some(t) if t <= now => {
                let mut out = Outbox::default();
                st.expire_due(&sh, &mut out);
                drop(st);
                sh.deliver(out);
                st = sh.state.lock();
            }
            Some(t) => {
                sh.deadline_cv.wait_until(&mut st, t);
            }
            None => {
                sh.deadline_cv.wait(&mut st);
            }
        }
    }
}
