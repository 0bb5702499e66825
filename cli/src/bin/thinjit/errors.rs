//! Error text and standard output shared by thinjit's binaries.

/// `println!` that returns the write's `io::Result` instead of panicking (a closed pipe is an error the caller
/// sees, and [`exit`] ends quietly on it).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
pub(crate) use outln;

/// `error: …` with the cause chain, skipping causes the message already quotes (thinjit errors include their
/// source's text).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

/// Ends the process for `result`: quietly on success or when standard output was closed (`… | head`), else
/// `error: …` on stderr and exit code 1.
pub fn exit(result: anyhow::Result<()>) {
    let Err(e) = result else {
        return;
    };
    let broken_pipe = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if !broken_pipe {
        eprintln!("error: {}", error_text(&e));
        std::process::exit(1);
    }
}
