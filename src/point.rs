//! Injection points: named places in the designs' code where a scenario can
//! make something happen (raise an NMI on this CPU, on another, on all).
//!
//! A point is a small integer so that the machine can keep one "armed" flag
//! per point and an unarmed point costs one relaxed load. The names are an
//! interface that scenario files depend on; never rename one.
//!
//! Some names exist in more than one design when the place is analogous, so
//! that the same scenario interrupts every design at the same logical moment:
//! `console_unlock:logbuf_locked` is where `legacy` copies a record for the
//! console under `logbuf_lock`, and where `lockless` copies one out of its
//! ring without any lock. [`crate::printk::DesignInfo::points`] says what each
//! point means in each design.

/// One named injection point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Point {
    /// Index into [`ALL`]; what the machine's armed table is indexed by.
    pub id: u16,
    /// The stable name scenarios use.
    pub name: &'static str,
}

macro_rules! points {
    ($($(#[$doc:meta])* $ident:ident = $id:literal, $name:literal;)*) => {
        $( $(#[$doc])* pub const $ident: Point = Point { id: $id, name: $name }; )*
        /// Every point, indexed by id.
        pub const ALL: &[Point] = &[$($ident),*];
    };
}

points! {
    /// vprintk: `logbuf_lock` just taken, `logbuf_cpu` not yet set (legacy's
    /// unprotected sliver).
    VPRINTK_LOCK_ACQUIRED = 0, "vprintk:lock_acquired";
    /// vprintk: inside the store window (legacy: `logbuf_lock` held and
    /// `logbuf_cpu` set; lockless: a record reserved, not yet committed).
    VPRINTK_LOGBUF_LOCKED = 1, "vprintk:logbuf_locked";
    /// console_unlock: copying one record for the console (legacy: under
    /// `logbuf_lock`; lockless: out of the ring, no lock).
    CONSOLE_UNLOCK_LOGBUF_LOCKED = 2, "console_unlock:logbuf_locked";
    /// console_unlock: writing one record to the console driver.
    CONSOLE_UNLOCK_WRITE = 3, "console_unlock:write";
    /// The ring: a descriptor's state became reserved, no data yet.
    PRB_RESERVED = 4, "prb:reserved";
    /// The ring: text written, not yet committed.
    PRB_BEFORE_COMMIT = 5, "prb:before_commit";
    /// The ring's reader: record copied, not yet re-validated.
    PRB_READ_COPIED = 6, "prb:read_copied";
    /// The ring: the descriptor head moved, the descriptor not yet reserved.
    PRB_HEAD_MOVED = 7, "prb:head_moved";
    /// The ring: the data head moved, the block's id written next.
    PRB_DATA_ALLOCATED = 8, "prb:data_allocated";
    /// The ring: committed (or about to final-commit), not yet finalized.
    PRB_BEFORE_FINALIZE = 9, "prb:before_finalize";
    /// nbcon: the console's owner is inside an unsafe section, about to
    /// put one character on the wire.
    NBCON_UNSAFE = 10, "nbcon:unsafe";
    /// nbcon: the console's owner is between two records, in a safe state.
    NBCON_SAFE = 11, "nbcon:safe";
    /// `down_trylock()`: the semaphore's own raw spinlock (`sem->lock`) is
    /// held, interrupts off, while the count is tested.
    DOWN_TRYLOCK_SEM_LOCKED = 12, "down_trylock:sem_locked";
    /// `up()`: the semaphore's own raw spinlock (`sem->lock`) is held,
    /// interrupts off, while the count is raised.
    UP_SEM_LOCKED = 13, "up:sem_locked";
    /// The serial console driver holds `port->lock` and is about to put a
    /// record on the wire.
    SERIAL_PORT_LOCKED = 14, "serial:port_locked";
}

/// The point with this name, if any.
pub fn by_name(name: &str) -> Option<Point> {
    ALL.iter().copied().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_index_the_table() {
        for (i, p) in super::ALL.iter().enumerate() {
            assert_eq!(p.id as usize, i, "{}", p.name);
        }
        assert_eq!(
            super::by_name("console_unlock:logbuf_locked"),
            Some(super::CONSOLE_UNLOCK_LOGBUF_LOCKED)
        );
    }
}
