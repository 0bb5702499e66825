//! `thinjit-worker`: the helper process of isolated compilation (`EngineBuilder::isolate_codegen`,
//! `thinjit run --isolate`). Reads requests on stdin and answers on stdout (`thinjit::jit::isolate::serve`)
//! until stdin closes; LLVM's fatal errors and crashes end only this process.

use std::io::{BufReader, BufWriter};
use std::os::fd::AsFd;

fn main() {
    // The file descriptors themselves, not the standard streams (stdout's line buffering would split a binary
    // response at every newline byte): one read and one write per frame.
    let fds = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|input| Ok((input, std::io::stdout().as_fd().try_clone_to_owned()?)));
    let (input, output) = match fds {
        Ok((i, o)) => (std::fs::File::from(i), std::fs::File::from(o)),
        Err(e) => {
            eprintln!("thinjit-worker: {e}");
            std::process::exit(1);
        }
    };
    let input = BufReader::with_capacity(1 << 16, input);
    let output = BufWriter::with_capacity(1 << 16, output);
    if let Err(e) = thinjit::jit::isolate::serve(input, output) {
        eprintln!("thinjit-worker: {e}");
        std::process::exit(1);
    }
}
