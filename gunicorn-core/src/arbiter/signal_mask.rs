//! Blocking signals around `fork()`: the child must not run the master's handlers before it
//! installs its own (the master blocks everything, forks, and each side restores its mask).

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};

/// Blocks every signal in this (single) thread, returning the previous mask.
pub(super) fn block_all_signals() -> SigSet {
    let mut old = SigSet::empty();
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old));
    old
}

pub(super) fn restore_signal_mask(old: &SigSet) {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(old), None);
}
