//! A `SeedTask` keeps the ordinal its loop gave it in a slot of its own.
//!
//! The loop numbers tasks in the order it first sees them (the trace's task
//! identity) in an address map verified through a weakref. Every task step
//! looked its task up there: a lock, a probe, a weakref upgrade, about 100
//! instructions and two cache misses a step. A `SeedTask` of this loop now
//! carries the number in its `_seedloop_ordinal` slot, read in a few loads;
//! the map still holds every task (clean-up lists the live ones from it) and
//! answers for tasks of other classes.

use std::ptr;
use std::sync::atomic::{AtomicIsize, AtomicPtr, AtomicU8, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// The class whose instances carry the slot (SeedTask), and the slot's byte offset.
static CLASS: AtomicPtr<ffi::PyTypeObject> = AtomicPtr::new(ptr::null_mut());
static OFFSET: AtomicIsize = AtomicIsize::new(0);

/// Is the word after the object header the task's loop (`fut_loop`, first
/// field of the C Future and Task in CPython 3.10-3.13)? 0 not yet known,
/// 1 yes, 2 no (then the slot is never used). Learnt on the first task
/// numbered, by comparing that word with its `_loop`.
static LOOP_LAYOUT: AtomicU8 = AtomicU8::new(0);

/// The byte offset of slot `name` in `cls`, a class that adds only
/// `__slots__` to its base; None for any other layout.
pub(crate) fn slot_offset(cls: &Bound<'_, PyType>, name: &str) -> PyResult<Option<isize>> {
    let word = std::mem::size_of::<*mut ffi::PyObject>() as isize;
    let base = cls.getattr("__base__")?;
    let size: isize = cls.getattr("__basicsize__")?.extract()?;
    let base_size: isize = base.getattr("__basicsize__")?.extract()?;
    let same = |attr: &str| -> PyResult<bool> {
        Ok(cls.getattr(attr)?.extract::<isize>()? == base.getattr(attr)?.extract::<isize>()?)
    };
    let Ok(names) = cls.getattr("__slots__")?.extract::<Vec<String>>() else {
        return Ok(None);
    };
    if size != base_size + word * names.len() as isize
        || !same("__dictoffset__")?
        || !same("__weakrefoffset__")?
    {
        return Ok(None);
    }
    // CPython lays a class's own slots out in sorted name order.
    let mut sorted = names;
    sorted.sort();
    Ok(sorted
        .iter()
        .position(|n| n == name)
        .map(|index| base_size + word * index as isize))
}

/// The word after `obj`'s object header: `fut_loop`, the first field of the
/// C Future and Task in CPython 3.10-3.13.
///
/// # Safety
/// `obj` must be a live object at least three words long (the GIL held).
pub(crate) unsafe fn first_field(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: the caller's guarantee.
    unsafe { *(obj as *const *mut ffi::PyObject).add(2) }
}

/// Is `loop_obj`, `obj._loop` as Python reads it, `obj`'s first field? Read
/// only when the class's slot at byte `slot` shows its instances are at
/// least three words long; false otherwise. How a registered class learns
/// it may read the loop from the field instead of the attribute.
pub(crate) fn loop_is_first_field(
    obj: &Bound<'_, PyAny>,
    loop_obj: &Bound<'_, PyAny>,
    slot: isize,
) -> bool {
    let word = std::mem::size_of::<*mut ffi::PyObject>() as isize;
    // SAFETY: read only once the instance is known to be three words long.
    slot >= 3 * word && unsafe { first_field(obj.as_ptr()) } == loop_obj.as_ptr()
}

/// Give `cls`'s instances the ordinal slot; False if its layout is not the
/// expected one (every task then goes through the loop's map).
#[pyfunction]
fn register_ordinal_slot(cls: &Bound<'_, PyType>) -> PyResult<bool> {
    let Some(offset) = slot_offset(cls, "_seedloop_ordinal")? else {
        return Ok(false);
    };
    let ty = cls.as_type_ptr();
    if CLASS.load(Ordering::Acquire) == ty {
        return Ok(true);
    }
    if !CLASS.load(Ordering::Acquire).is_null() {
        return Ok(false); // one class only: SeedTask
    }
    OFFSET.store(offset, Ordering::Release);
    // The class must outlive every read: keep a reference for the process.
    std::mem::forget(cls.clone().unbind());
    CLASS.store(ty, Ordering::Release);
    Ok(true)
}

/// Is `obj` exactly a SeedTask (the registered class)?
pub(crate) fn is_seed_task(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: a live object (the GIL held).
    unsafe { ffi::Py_TYPE(obj.as_ptr()) == CLASS.load(Ordering::Acquire) }
}

/// The slot of `task` if it is a SeedTask of the loop at `loop_addr`.
fn slot_of(task: *mut ffi::PyObject, loop_addr: usize) -> Option<*mut *mut ffi::PyObject> {
    // SAFETY: a live object (the GIL held); instances of CLASS are at least
    // OFFSET + one word long (checked at registration), and at least three
    // words (a Future's layout, checked before LOOP_LAYOUT was set to 1).
    unsafe {
        if ffi::Py_TYPE(task) != CLASS.load(Ordering::Acquire)
            || LOOP_LAYOUT.load(Ordering::Relaxed) != 1
            || first_field(task) as usize != loop_addr
        {
            return None;
        }
        Some((task as *mut u8).offset(OFFSET.load(Ordering::Acquire)) as *mut *mut ffi::PyObject)
    }
}

/// The ordinal `task` carries for the loop at `loop_addr`, if it carries one.
pub(crate) fn read(task: &Bound<'_, PyAny>, loop_addr: usize) -> Option<u32> {
    let slot = slot_of(task.as_ptr(), loop_addr)?;
    // SAFETY: the slot of a live task (see slot_of); only an exact int is read.
    unsafe {
        let held = *slot;
        if held.is_null() || ffi::Py_TYPE(held) != ptr::addr_of_mut!(ffi::PyLong_Type) {
            return None; // not numbered yet, or overwritten from Python
        }
        u32::try_from(ffi::PyLong_AsUnsignedLongLong(held)).ok()
    }
}

/// Keep `ordinal` on `task` (just numbered by the loop at `loop_addr`).
pub(crate) fn write(py: Python<'_>, task: &Bound<'_, PyAny>, loop_addr: usize, ordinal: u32) {
    if LOOP_LAYOUT.load(Ordering::Relaxed) == 0
        && task.get_type().as_type_ptr() == CLASS.load(Ordering::Acquire)
    {
        learn_layout(py, task);
    }
    let Some(slot) = slot_of(task.as_ptr(), loop_addr) else {
        return;
    };
    // SAFETY: the slot of a live task (see slot_of); it owns one reference.
    unsafe {
        let value = ffi::PyLong_FromUnsignedLongLong(u64::from(ordinal));
        if value.is_null() {
            ffi::PyErr_Clear(); // out of memory: the map still answers
            return;
        }
        let old = std::mem::replace(&mut *slot, value);
        if !old.is_null() {
            ffi::Py_DECREF(old);
        }
    }
}

fn learn_layout(py: Python<'_>, task: &Bound<'_, PyAny>) {
    let Ok(by_name) = task.getattr(pyo3::intern!(py, "_loop")) else {
        return;
    };
    let same = loop_is_first_field(task, &by_name, OFFSET.load(Ordering::Acquire));
    LOOP_LAYOUT.store(if same { 1 } else { 2 }, Ordering::Relaxed);
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(register_ordinal_slot, m)?)?;
    Ok(())
}
