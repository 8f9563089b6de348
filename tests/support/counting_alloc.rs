//! A counting global allocator for the zero-allocation tests. Including
//! this module installs it for the test binary (one per binary):
//! `#[path = "support/counting_alloc.rs"] mod counting_alloc;`.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator also runs while thread locals are torn down.
    let _ = COUNTING.try_with(|counting| {
        if counting.get() {
            let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Heap allocations (and reallocations) `f` makes on this thread.
pub fn allocations_in<R>(f: impl FnOnce() -> R) -> (u64, R) {
    ALLOCATIONS.with(|count| count.set(0));
    COUNTING.with(|counting| counting.set(true));
    let result = f();
    COUNTING.with(|counting| counting.set(false));
    (ALLOCATIONS.with(Cell::get), result)
}

/// Runs `step` `warm_up` times uncounted, then `iterations` times counted,
/// and asserts that the counted part allocated nothing.
pub fn assert_steady_state_allocates_nothing(
    what: &str,
    warm_up: u32,
    iterations: u32,
    mut step: impl FnMut(u32),
) {
    for iteration in 0..warm_up {
        step(iteration);
    }
    let (allocations, ()) = allocations_in(|| {
        for iteration in warm_up..warm_up + iterations {
            step(iteration);
        }
    });
    assert_eq!(
        allocations, 0,
        "{what}: {allocations} heap allocations in {iterations} steps after warm-up"
    );
}
