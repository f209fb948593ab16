//! A cell whose lock is the GIL: the loop's state and handle pool.
//!
//! Every path into a loop's state is a Python call (a method of the loop,
//! a handle run by it, its deallocation), so the GIL already keeps two
//! threads out of it. The mutexes this replaces cost two atomic operations
//! per use and four uses per callback (bench/RESULTS.md section 1). What is
//! left to check is re-entry: Python code run while the cell is held (a
//! destructor, or another thread that took the GIL while that code released
//! it) must not get a second reference. The flag catches it: `lock` panics
//! (PyO3's methods turn that into a Python exception) and `try_lock` lets
//! `call_soon` raise instead; the mutex deadlocked. The loop drops what may
//! run such code (cancelled timers, old schedulers) only after letting go.

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

pub(crate) struct GilCell<T> {
    held: Cell<bool>,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through `lock`, called only with the GIL
// held (see the module comment): the GIL orders every access, including to
// `held`, and a guard cannot cross into code that runs without it (it is
// not Send, so `allow_threads` closures cannot take it).
unsafe impl<T: Send> Sync for GilCell<T> {}

impl<T> GilCell<T> {
    pub(crate) fn new(value: T) -> Self {
        GilCell {
            held: Cell::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, for as long as the guard lives. Call with the GIL held.
    #[inline]
    pub(crate) fn lock(&self) -> GilGuard<'_, T> {
        match self.try_lock() {
            Some(guard) => guard,
            None => panic!(
                "seedloop's loop state was re-entered while in use (a destructor or \
                 another thread called into the loop during one of its own operations)"
            ),
        }
    }

    /// `lock`, or None when the cell is already held (re-entry): for the
    /// method CPython calls most, which turns it into an error instead of
    /// paying for a panic guard on every call.
    #[inline]
    pub(crate) fn try_lock(&self) -> Option<GilGuard<'_, T>> {
        if self.held.replace(true) {
            return None;
        }
        Some(GilGuard {
            cell: self,
            _not_send: PhantomData,
        })
    }
}

impl<T: Default> Default for GilCell<T> {
    fn default() -> Self {
        GilCell::new(T::default())
    }
}

pub(crate) struct GilGuard<'a, T> {
    cell: &'a GilCell<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for GilGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: `held` makes this guard the only way to the value.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T> DerefMut for GilGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and `&mut self` makes this the only borrow.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T> Drop for GilGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.cell.held.set(false);
    }
}
