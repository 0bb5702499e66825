//! Error text shared by thinjit's binaries.

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
