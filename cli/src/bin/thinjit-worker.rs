//! `thinjit-worker`: the helper process of isolated compilation (`EngineBuilder::isolate_codegen`,
//! `thinjit run --isolate`). Reads requests on stdin and answers on stdout (`thinjit::jit::isolate::serve`)
//! until stdin closes; LLVM's fatal errors and crashes end only this process.

use std::io::{BufReader, BufWriter};

fn main() {
    let input = BufReader::new(std::io::stdin().lock());
    let output = BufWriter::new(std::io::stdout().lock());
    if let Err(e) = thinjit::jit::isolate::serve(input, output) {
        eprintln!("thinjit-worker: {e}");
        std::process::exit(1);
    }
}
