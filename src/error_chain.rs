//! One line for an error and its causes, for logs and run notes.

/// `e`, then each cause not already in the text, joined with ": ".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !msg.contains(&text) {
            msg = format!("{msg}: {text}");
        }
        cause = c.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct E(&'static str, #[source] Option<Box<E>>);

    #[test]
    fn causes_are_appended_once() {
        let leaf = E("connection refused", None);
        assert_eq!(error_chain(&E("cannot send", Some(Box::new(leaf)))), "cannot send: connection refused");
        let repeated = E("cannot send: connection refused", Some(Box::new(E("connection refused", None))));
        assert_eq!(error_chain(&repeated), "cannot send: connection refused");
    }
}
