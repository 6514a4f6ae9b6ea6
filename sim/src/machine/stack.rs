//! Shadow call stacks: per CPU, the static names of the frames the CPU is
//! in, readable by the CPU itself (an NMI backtrace) and by others (a
//! remote dump) while it runs.
//!
//! One stack per CPU is shared by all its contexts, as a real stack is: an
//! NMI pushes on top of whatever it interrupted and pops back before it
//! returns. A push bumps `depth` before writing the frame, so an interrupt
//! that lands between the two writes its own frame above, not over it.
//!
//! `gen` is bumped at the start and at the end of every push and pop. A
//! nested interrupt's changes come in complete pairs, so `gen` is odd
//! exactly while some change is in progress; a remote reader that sees
//! the same even `gen` before and after its copy took a consistent trace,
//! and otherwise reports it torn.
//!
//! Push and pop are called from signal handlers: atomics only.

use core::sync::atomic::{compiler_fence, fence, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use klog::Frame;

/// Frames kept per CPU; deeper frames are counted but not named.
pub const MAX_FRAMES: usize = 32;

/// One CPU's shadow stack.
#[derive(Debug)]
pub struct ShadowStack {
    gen: AtomicU64,
    depth: AtomicUsize,
    frames: [AtomicPtr<Frame>; MAX_FRAMES],
}

/// A copy of a shadow stack, innermost frame last.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// Frame names, outermost first.
    pub frames: Vec<&'static str>,
    /// The stack changed while it was being read.
    pub torn: bool,
}

impl Default for ShadowStack {
    fn default() -> Self {
        ShadowStack {
            gen: AtomicU64::new(0),
            depth: AtomicUsize::new(0),
            frames: core::array::from_fn(|_| AtomicPtr::new(core::ptr::null_mut())),
        }
    }
}

impl ShadowStack {
    /// Push `frame`. Only the owning CPU calls this.
    pub fn push(&self, frame: &'static Frame) {
        self.gen.fetch_add(1, Ordering::Release);
        let d = self.depth.load(Ordering::Relaxed);
        self.depth.store(d + 1, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        if let Some(slot) = self.frames.get(d) {
            slot.store(frame as *const Frame as *mut Frame, Ordering::Relaxed);
        }
        self.gen.fetch_add(1, Ordering::Release);
    }

    /// Pop the innermost frame. Only the owning CPU calls this.
    pub fn pop(&self) {
        self.gen.fetch_add(1, Ordering::Release);
        let d = self.depth.load(Ordering::Relaxed);
        self.depth.store(d.saturating_sub(1), Ordering::Relaxed);
        self.gen.fetch_add(1, Ordering::Release);
    }

    /// Visit the frames, outermost first, without allocating (for the CPU's
    /// own NMI backtrace). Returns the depth.
    pub fn for_each(&self, mut f: impl FnMut(&'static str)) -> usize {
        let depth = self.depth.load(Ordering::Relaxed);
        for slot in self.frames.iter().take(depth) {
            let p = slot.load(Ordering::Relaxed);
            // SAFETY: only `push` stores into `frames`, and only pointers
            // made from `&'static Frame`; null means never written.
            if let Some(frame) = unsafe { p.as_ref() } {
                f(frame.0);
            }
        }
        depth
    }

    /// Copy the frames, outermost first, into `out` (the CPU's own stack,
    /// from any of its contexts); the number copied. Allocates nothing.
    pub fn copy_into(&self, out: &mut [Option<&'static Frame>]) -> usize {
        let depth = self.depth.load(Ordering::Relaxed);
        let mut n = 0;
        for (slot, o) in self.frames.iter().take(depth).zip(out.iter_mut()) {
            let p = slot.load(Ordering::Relaxed);
            // SAFETY: only `push` stores into `frames`, and only pointers
            // made from `&'static Frame`.
            *o = unsafe { p.as_ref() };
            n += 1;
        }
        n
    }

    /// Walk the stack of another CPU while it runs, handing each frame to
    /// `f` as it is read (`f` may take its time: the kernel's remote dump
    /// prints as it walks). True if the stack changed during the walk: the
    /// trace may mix frames from before and after. Allocates nothing.
    pub fn walk_remote(&self, f: impl FnMut(&'static str)) -> bool {
        let before = self.gen.load(Ordering::Acquire);
        self.for_each(f);
        fence(Ordering::Acquire);
        let after = self.gen.load(Ordering::Relaxed);
        before != after || before % 2 == 1
    }

    /// Copy the stack, possibly from another CPU while it runs.
    pub fn trace(&self) -> Trace {
        let before = self.gen.load(Ordering::Acquire);
        let mut frames = Vec::with_capacity(MAX_FRAMES);
        self.for_each(|name| frames.push(name));
        fence(Ordering::Acquire);
        let after = self.gen.load(Ordering::Relaxed);
        Trace {
            frames,
            torn: before != after || before % 2 == 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static A: Frame = Frame("a");
    static B: Frame = Frame("b");

    #[test]
    fn push_pop_trace() {
        let s = ShadowStack::default();
        s.push(&A);
        s.push(&B);
        assert_eq!(
            s.trace(),
            Trace {
                frames: vec!["a", "b"],
                torn: false
            }
        );
        s.pop();
        assert_eq!(s.trace().frames, vec!["a"]);
    }
}
