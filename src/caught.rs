//! Third-party code that panics where it should return an error: calamine on
//! a truncated OLE2 sector chain, rust_xlsxwriter when the row file of a
//! constant-memory sheet cannot be flushed (a full disk). Caught at the call,
//! the panic becomes that file's error instead of taking the daemon down.

use std::{
    cell::Cell,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Once,
};

thread_local! {
    /// This thread is inside [`panics`]: its panic is an error to come.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`; a panic in it comes back as its message. Only for calls whose
/// state is thrown away on error (a file being read or written), so nothing
/// left half-updated by the panic is used again. The panic is not printed
/// (the caller reports it as an error; a raw line on stderr would also break
/// JSON logs): a debug event says where it happened.
pub(crate) fn panics<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static QUIET_WHEN_CAUGHT: Once = Once::new();
    QUIET_WHEN_CAUGHT.call_once(|| {
        let earlier = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.get() {
                tracing::debug!(%info, "panic caught, reported as an error");
            } else {
                earlier(info);
            }
        }));
    });
    let outer = CATCHING.replace(true);
    let result = catch_unwind(AssertUnwindSafe(f));
    CATCHING.set(outer);
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::panics;

    #[test]
    fn a_panic_comes_back_as_its_message() {
        assert_eq!(panics(|| 7), Ok(7));
        assert_eq!(panics(|| -> u8 { panic!("static text") }), Err("static text".to_string()));
        let n = 3;
        assert_eq!(panics(|| -> u8 { panic!("formatted {n}") }), Err("formatted 3".to_string()));
    }
}
