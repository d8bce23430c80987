//! The two ways pgalign spreads CPU work over a machine's cores (2 on the machines it is
//! measured on): scoped threads whose panics go on in the caller.

/// A scoped thread's result; its panic goes on in the caller.
pub fn joined<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// `f` of each item, in order, worked out on two threads.
pub fn on_two_threads<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let (a, b) = items.split_at(items.len() / 2);
    let f = &f;
    std::thread::scope(|scope| {
        let second = scope.spawn(move || b.iter().map(f).collect::<Vec<R>>());
        let mut out: Vec<R> = a.iter().map(f).collect();
        out.extend(joined(second));
        out
    })
}
